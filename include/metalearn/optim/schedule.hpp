#pragma once
/// @file
/// @brief Learning-rate schedules for any optimizer with `set_learning_rate` and `steps()`
/// (optim::Adam, optim::Sgd): the rate of each step is a function of the steps taken, so a
/// schedule resumes from a checkpoint exactly where it was (the optimizer's step count is
/// part of its checkpointed state).

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace metalearn::optim {

/// lr(t) = start + (end − start) · min(t, steps) / steps: linear from `start` to `end` over
/// `steps` steps, then `end` (Reptile anneals its outer step size so, to 0).
struct LinearSchedule {
  double start = 1e-3;  ///< rate of the first step
  double end = 0;       ///< rate from step `steps` on
  std::int64_t steps = 1;  ///< length of the ramp (≥ 1)

  /// The rate of the step after `t` steps.
  double operator()(std::int64_t t) const {
    const double f = static_cast<double>(std::min(t, steps)) / static_cast<double>(steps);
    return start + (end - start) * f;
  }
  /// Throws `invalid_argument` unless the rates are finite and ≥ 0 and steps ≥ 1.
  void validate(const char* where) const {
    detail::check_non_negative(where, "LinearSchedule's start", start);
    detail::check_non_negative(where, "LinearSchedule's end", end);
    if (steps < 1) detail::fail(where, "LinearSchedule's steps must be >= 1, got ", steps);
  }
};

/// lr(t) = floor + (start − floor) · (1 + cos(π · min(t, steps) / steps)) / 2: cosine annealing
/// (Loshchilov & Hutter) from `start` to `floor` over `steps` steps, then `floor` (MAML++
/// anneals its meta learning rate so).
struct CosineSchedule {
  double start = 1e-3;  ///< rate of the first step
  double floor = 0;     ///< rate from step `steps` on
  std::int64_t steps = 1;  ///< length of the annealing (≥ 1)

  /// The rate of the step after `t` steps.
  double operator()(std::int64_t t) const {
    const double f = static_cast<double>(std::min(t, steps)) / static_cast<double>(steps);
    return floor + (start - floor) * 0.5 * (1 + std::cos(3.141592653589793238 * f));
  }
  /// Throws `invalid_argument` unless the rates are finite and ≥ 0 and steps ≥ 1.
  void validate(const char* where) const {
    detail::check_non_negative(where, "CosineSchedule's start", start);
    detail::check_non_negative(where, "CosineSchedule's floor", floor);
    if (steps < 1) detail::fail(where, "CosineSchedule's steps must be >= 1, got ", steps);
  }
};

/// An optimizer whose learning rate follows `schedule` of its own step count: each `step`
/// sets the rate schedule(optimizer.steps()) and then steps. It holds a reference to the
/// optimizer (which must outlive it) and is itself an optimizer for the trainers; checkpoint
/// the wrapped optimizer (`optimizer()`), whose step count carries the schedule's position.
template <class Optimizer, class Schedule>
class Scheduled {
 public:
  using Scalar = typename Optimizer::value_type;  ///< float or double

  /// Checks the schedule (throws `invalid_argument` naming the bad field).
  Scheduled(Optimizer& optimizer, Schedule schedule) : optimizer_(optimizer), schedule_(schedule) {
    schedule_.validate("optim::Scheduled");
  }

  /// One update of θ with gradient g at the rate schedule(steps taken).
  void step(VectorRef<Scalar> theta, ConstVectorRef<Scalar> g) {
    optimizer_.set_learning_rate(schedule_(optimizer_.steps()));
    optimizer_.step(theta, g);
  }
  /// Number of parameters.
  Index parameter_count() const { return optimizer_.parameter_count(); }
  /// Steps taken (the wrapped optimizer's).
  std::int64_t steps() const { return optimizer_.steps(); }
  /// The rate the next step will use.
  double next_learning_rate() const { return schedule_(optimizer_.steps()); }
  /// The wrapped optimizer.
  Optimizer& optimizer() { return optimizer_; }
  /// The schedule.
  const Schedule& schedule() const { return schedule_; }

 private:
  Optimizer& optimizer_;
  Schedule schedule_;
};

}  // namespace metalearn::optim
