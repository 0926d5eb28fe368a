#pragma once
// A fixed meta-batch of sine tasks for the algorithm tests.
#include <metalearn/core/types.hpp>
#include <metalearn/tasks/sine.hpp>

#include <cstdint>
#include <vector>

namespace mlt {

/// `count` tasks of tasks::SineTasks<S>(seed) with `shots` support and `shots + extra_query`
/// query points each, drawn in order.
template <class S>
std::vector<typename metalearn::tasks::SineTasks<S>::Task> sine_tasks(std::uint64_t seed, metalearn::Index count,
                                                                      metalearn::Index shots,
                                                                      metalearn::Index extra_query = 2) {
  typename metalearn::tasks::SineTasks<S>::Options o;
  o.support = shots;
  o.query = shots + extra_query;
  metalearn::tasks::SineTasks<S> sampler(seed, o);
  std::vector<typename metalearn::tasks::SineTasks<S>::Task> tasks(static_cast<std::size_t>(count));
  for (auto& t : tasks) sampler.sample(t);
  return tasks;
}

}  // namespace mlt
