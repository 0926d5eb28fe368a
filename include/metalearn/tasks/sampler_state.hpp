#pragma once
/// @file
/// @brief A task sampler's state as checkpoints store it, and the three overloads by which a
/// sampler takes part in checkpoints (found by argument-dependent lookup, like the
/// optimizers'): `sampler_state(s)`, `check_sampler_state(s, state, where)` (throws
/// `checkpoint_error` unless `restore_sampler_state` would succeed) and
/// `restore_sampler_state(s, state)` (must not throw after a successful check).
///
/// Provided here for a bare `Rng` (a sampler whose whole state is its engine, such as
/// `tasks::SineTasks`: pass `sampler.rng()`), and in tasks/episodes.hpp for
/// `tasks::EpisodeSampler`. Write the same three for your own sampler.

#include <metalearn/core/error.hpp>
#include <metalearn/core/random.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace metalearn {

/// What a checkpoint records of the task sampler.
struct SamplerState {
  /// What the sampler is and how it is configured ("rng" for a bare engine); a checkpoint
  /// loads only into a sampler that reports the same text.
  std::string kind;
  /// Its state: the engine's four words first, then whatever else it carries.
  std::vector<std::uint64_t> words;
};

namespace detail {
inline bool rng_words_valid(const std::vector<std::uint64_t>& w) {
  return w.size() >= 4 && (w[0] | w[1] | w[2] | w[3]) != 0;
}
/// Throws `checkpoint_error` unless `state` is of `kind` with `words` words, the first four a
/// valid engine state.
inline void check_sampler_words(const SamplerState& state, const std::string& kind, std::size_t words,
                                const char* where) {
  if (state.kind != kind)
    fail_file(where, "the checkpoint's task sampler is '", state.kind, "', this run's is '", kind, "'");
  if (state.words.size() != words)
    fail_file(where, "the task sampler's state has ", state.words.size(), " words, expected ", words);
  if (!rng_words_valid(state.words)) fail_file(where, "the task sampler's RNG state is all zero (invalid)");
}
inline Rng::State rng_words(const std::vector<std::uint64_t>& w) { return {w[0], w[1], w[2], w[3]}; }
}  // namespace detail

/// A bare engine's state: kind "rng", its four words.
inline SamplerState sampler_state(const Rng& rng) {
  const Rng::State& s = rng.state();
  return {"rng", {s[0], s[1], s[2], s[3]}};
}
/// Throws `checkpoint_error` unless `state` is a valid bare engine state.
inline void check_sampler_state(const Rng&, const SamplerState& state, const char* where) {
  detail::check_sampler_words(state, "rng", 4, where);
}
/// Restores the engine (after `check_sampler_state`).
inline void restore_sampler_state(Rng& rng, const SamplerState& state) { rng.set_state(detail::rng_words(state.words)); }

}  // namespace metalearn
