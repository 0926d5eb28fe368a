// Class splits, rotated class pools and the N-way K-shot episode sampler: every guarantee of
// tasks/episodes.hpp, and its checkpoint state.
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/episodes.hpp>

#include <catch.hpp>
#include <temp_dir.hpp>
#include <test_support.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace tasks = metalearn::tasks;
namespace data = metalearn::data;
using metalearn::Index;
using metalearn::Rng;

namespace {
// `classes` classes with counts[c % counts.size()] examples each; feature 0 of every example
// is its unique id (its column), so episodes can be traced back to the dataset.
template <class S>
data::LabelledDataset<S> traced_dataset(int classes, const std::vector<Index>& counts, Index features = 4) {
  data::LabelledDataset<S> ds;
  ds.classes = classes;
  Index n = 0;
  for (int c = 0; c < classes; ++c) n += counts[static_cast<std::size_t>(c) % counts.size()];
  ds.features.resize(features, n);
  ds.labels.resize(n);
  Index j = 0;
  for (int c = classes - 1; c >= 0; --c)  // classes not in label order, to exercise the grouping
    for (Index i = 0; i < counts[static_cast<std::size_t>(c) % counts.size()]; ++i, ++j) {
      ds.features.col(j).setConstant(S(c));
      ds.features(0, j) = S(j);
      ds.labels[j] = c;
    }
  return ds;
}
std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}
}  // namespace

TEST_CASE("split_classes: disjoint seeded parts covering every class, sorted", "[tasks][episodes]") {
  const auto parts = tasks::split_classes(1623, {1200}, 1);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].size() == 1200);
  CHECK(parts[1].size() == 423);
  std::vector<int> all(parts[0]);
  all.insert(all.end(), parts[1].begin(), parts[1].end());
  std::sort(all.begin(), all.end());
  CHECK(all == iota(1623));  // disjoint and complete
  CHECK(std::is_sorted(parts[0].begin(), parts[0].end()));
  CHECK(std::is_sorted(parts[1].begin(), parts[1].end()));
  CHECK(tasks::split_classes(1623, {1200}, 1) == parts);   // reproducible
  CHECK(tasks::split_classes(1623, {1200}, 2) != parts);   // and the seed matters
  CHECK(parts[0] != std::vector<int>(all.begin(), all.begin() + 1200));  // random, not the first 1200
  const auto three = tasks::split_classes(10, {3, 7}, 5);
  CHECK(three[0].size() == 3);
  CHECK(three[1].size() == 7);
  CHECK(three[2].empty());
  CHECK_THROWS_WITH(([] { tasks::split_classes(10, {6, 5}, 1); }()), mlt::contains("the parts hold 11 classes, the dataset has 10"));
  CHECK_THROWS_WITH(([] { tasks::split_classes(0, {}, 1); }()), mlt::contains("classes must be >= 1"));
  CHECK_THROWS_WITH(([] { tasks::split_classes(5, {-1}, 1); }()), mlt::contains("part sizes must be >= 0, got -1"));
}

TEST_CASE("classes_in_groups: the classes of chosen groups, and a grouping that is not one of classes refused",
          "[tasks][episodes]") {
  metalearn::Labels labels(6), groups(6);
  labels << 0, 0, 1, 2, 2, 3;
  groups << 7, 7, 8, 7, 7, 9;
  CHECK(tasks::classes_in_groups(labels, 5, groups, {7}) == std::vector<int>{0, 2});
  CHECK(tasks::classes_in_groups(labels, 5, groups, {8, 9}) == std::vector<int>{1, 3});
  CHECK(tasks::classes_in_groups(labels, 5, groups, {4}).empty());
  groups[1] = 8;
  CHECK_THROWS_WITH(([&] { tasks::classes_in_groups(labels, 5, groups, {7}); }()), mlt::contains("class 0 has examples in groups 7 and 8"));
  groups[1] = 7;
  labels[5] = 5;
  CHECK_THROWS_WITH(([&] { tasks::classes_in_groups(labels, 5, groups, {7}); }()), mlt::contains("label 5 is 5, expected 0 to 4"));
  CHECK_THROWS_WITH(([&] { tasks::classes_in_groups(labels, 5, metalearn::Labels(2), {7}); }()), mlt::contains("example_groups"));
}

TEST_CASE("ClassPool: classes grouped with their examples, rotations as four classes of quarter turns",
          "[tasks][episodes]") {
  const auto ds = traced_dataset<double>(6, {3, 5}, 9);  // 3 × 3 images
  const tasks::ClassPool<double> plain(ds, {4, 1});
  CHECK(plain.classes() == 2);
  CHECK(plain.examples(0) == 3);  // class 4
  CHECK(plain.examples(1) == 5);  // class 1
  CHECK(plain.min_examples() == 3);
  CHECK(plain.dataset_class(0) == 4);
  CHECK(plain.total_examples() == 8);
  Eigen::VectorXd x(9);
  for (Index i = 0; i < plain.examples(1); ++i) {
    plain.copy_example(1, i, x);
    CHECK(x[1] == 1.0);  // an example of dataset class 1
  }
  // a 3 × 3 image with distinct pixels, turned counter-clockwise (as numpy.rot90)
  data::LabelledDataset<double> one;
  one.classes = 1;
  one.features.resize(9, 1);
  for (int i = 0; i < 9; ++i) one.features(i, 0) = i;  // rows (0 1 2) (3 4 5) (6 7 8)
  one.labels.setZero(1);
  const tasks::ClassPool<double> rotated(one, {0}, {4, 0});
  REQUIRE(rotated.classes() == 4);
  Eigen::VectorXd r(9), expected(9);
  rotated.copy_example(0, 0, r);
  CHECK(r == one.features.col(0));
  rotated.copy_example(1, 0, r);
  expected << 2, 5, 8, 1, 4, 7, 0, 3, 6;  // 90°
  CHECK(r == expected);
  CHECK(rotated.quarter_turns(1) == 1);
  rotated.copy_example(2, 0, r);
  expected << 8, 7, 6, 5, 4, 3, 2, 1, 0;  // 180°
  CHECK(r == expected);
  rotated.copy_example(3, 0, r);
  expected << 6, 3, 0, 7, 4, 1, 8, 5, 2;  // 270°
  CHECK(r == expected);
  CHECK(rotated.dataset_class(3) == 0);
  CHECK_THROWS_WITH(([&] { tasks::ClassPool<double>(ds, {}); }()), mlt::contains("the class list is empty"));
  CHECK_THROWS_WITH(([&] { tasks::ClassPool<double>(ds, {1, 1}); }()), mlt::contains("class 1 is listed twice"));
  CHECK_THROWS_WITH(([&] { tasks::ClassPool<double>(ds, {6}); }()), mlt::contains("class 6 is not one of the dataset's 0 to 5"));
  CHECK_THROWS_WITH(([&] { tasks::ClassPool<double>(ds, {1}, {3}); }()), mlt::contains("rotations must be 1 or 4, got 3"));
  const auto wide = traced_dataset<double>(2, {2}, 10);
  CHECK_THROWS_WITH(([&] { tasks::ClassPool<double>(wide, {1}, {4}); }()), mlt::contains("10 features are not a square number"));
  auto missing = ds;
  missing.classes = 7;
  CHECK_THROWS_WITH(([&] { tasks::ClassPool<double>(missing, {6}); }()), mlt::contains("class 6 has no examples"));
}

TEST_CASE("EpisodeSampler: distinct classes, K + Q distinct examples each, labels 0..N-1 in random order",
          "[tasks][episodes]") {
  const auto ds = traced_dataset<float>(30, {20, 7, 12});
  const tasks::ClassPool<float> pool(ds, iota(30));
  const tasks::EpisodeOptions shape{5, 3, 4};
  tasks::EpisodeSampler<float> sampler(pool, shape, 11);
  tasks::EpisodeSampler<float>::Task task;
  std::map<Index, int> label0_classes;
  std::map<Index, int> drawn;
  for (int e = 0; e < 400; ++e) {
    sampler.sample(task);
    REQUIRE(task.support.inputs.cols() == 15);
    REQUIRE(task.query.inputs.cols() == 20);
    const auto& chosen = sampler.classes();
    REQUIRE(chosen.size() == 5);
    CHECK(std::set<Index>(chosen.begin(), chosen.end()).size() == 5);  // distinct
    std::set<float> ids;
    for (Index j = 0; j < 15; ++j) {
      const int label = task.support.targets[j];
      CHECK(label == j / 3);  // class-major, 0 … N − 1
      CHECK(task.support.inputs(1, j) == static_cast<float>(pool.dataset_class(chosen[static_cast<std::size_t>(label)])));
      ids.insert(task.support.inputs(0, j));
    }
    for (Index j = 0; j < 20; ++j) {
      const int label = task.query.targets[j];
      CHECK(label == j / 4);
      CHECK(task.query.inputs(1, j) == static_cast<float>(pool.dataset_class(chosen[static_cast<std::size_t>(label)])));
      ids.insert(task.query.inputs(0, j));
    }
    CHECK(ids.size() == 35);  // no example twice: support and query never overlap
    ++label0_classes[chosen[0]];
    for (Index c : chosen) ++drawn[c];
  }
  CHECK(sampler.episodes() == 400);
  // every class is drawn, about equally often (400 · 5 / 30 ≈ 67 each), and label 0 is not tied
  // to the smallest class id
  CHECK(drawn.size() == 30);
  for (const auto& [c, n] : drawn) CHECK((n > 30 && n < 110));
  CHECK(label0_classes.size() > 20);
  // reproducible by seed, and the stream matters
  tasks::EpisodeSampler<float> again(pool, shape, 11), other(pool, shape, 12), stream(pool, shape, 11, 1);
  tasks::EpisodeSampler<float> first(pool, shape, 11);
  tasks::EpisodeSampler<float>::Task a, b, c, d;
  first.sample(a);
  again.sample(b);
  other.sample(c);
  stream.sample(d);
  CHECK(a.support.inputs == b.support.inputs);
  CHECK(a.query.inputs == b.query.inputs);
  CHECK(a.support.inputs != c.support.inputs);
  CHECK(a.support.inputs != d.support.inputs);
}

TEST_CASE("EpisodeSampler: rotated classes are drawn as classes of their own", "[tasks][episodes]") {
  const auto ds = traced_dataset<double>(3, {4}, 16);
  const tasks::ClassPool<double> pool(ds, {0, 1, 2}, {4});
  tasks::EpisodeSampler<double> sampler(pool, {12, 1, 1}, 3);  // every rotated class at once
  tasks::EpisodeSampler<double>::Task task;
  sampler.sample(task);
  auto chosen = sampler.classes();
  std::sort(chosen.begin(), chosen.end());
  CHECK(chosen == std::vector<Index>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
}

TEST_CASE("EpisodeSampler: every bad request is refused naming what was asked and what exists", "[tasks][episodes]") {
  const auto ds = traced_dataset<float>(6, {5, 3});
  const tasks::ClassPool<float> pool(ds, iota(6));
  CHECK_THROWS_WITH(([&] { tasks::EpisodeSampler<float>(pool, {7, 1, 1}, 1); }()), mlt::contains("7-way episodes asked for, the pool has 6 classes"));
  CHECK_THROWS_WITH(([&] { tasks::EpisodeSampler<float>(pool, {5, 2, 2}, 1); }()), mlt::contains("2 shots + 2 queries per class asked for, the pool's smallest class has 3 examples"));
  CHECK_THROWS_WITH(([&] { tasks::EpisodeSampler<float>(pool, {1, 1, 1}, 1); }()), mlt::contains("ways must be >= 2, got 1"));
  CHECK_THROWS_WITH(([&] { tasks::EpisodeSampler<float>(pool, {2, 0, 1}, 1); }()), mlt::contains("shots must be >= 1, got 0"));
  CHECK_THROWS_WITH(([&] { tasks::EpisodeSampler<float>(pool, {2, 1, 0}, 1); }()), mlt::contains("queries must be >= 1, got 0"));
  CHECK_NOTHROW(tasks::EpisodeSampler<float>(pool, {6, 2, 1}, 1));
}

TEST_CASE("EpisodeSampler: checkpoint state resumes the stream, another shape is refused naming both",
          "[tasks][episodes][io]") {
  const auto ds = traced_dataset<float>(12, {6});
  const tasks::ClassPool<float> pool(ds, iota(12));
  tasks::EpisodeSampler<float> s(pool, {4, 1, 2}, 21);
  tasks::EpisodeSampler<float>::Task t, u;
  for (int i = 0; i < 5; ++i) s.sample(t);
  const metalearn::SamplerState state = sampler_state(s);
  CHECK(state.words.size() == 5);
  CHECK(state.words[4] == 5);
  s.sample(t);
  tasks::EpisodeSampler<float> r(pool, {4, 1, 2}, 99);
  check_sampler_state(r, state, "test");
  restore_sampler_state(r, state);
  CHECK(r.episodes() == 5);
  r.sample(u);
  CHECK(u.support.inputs == t.support.inputs);
  CHECK(u.query.inputs == t.query.inputs);
  tasks::EpisodeSampler<float> wrong(pool, {5, 1, 2}, 1);
  CHECK_THROWS_WITH(([&] { check_sampler_state(wrong, state, "test"); }()), mlt::contains("the checkpoint's task sampler is 'tasks::EpisodeSampler(4-way 1-shot, 2 queries; classes 12"));
  CHECK_THROWS_WITH(([&] { check_sampler_state(wrong, state, "test"); }()), mlt::contains("this run's is 'tasks::EpisodeSampler(5-way 1-shot"));
  metalearn::Rng rng(1);
  CHECK_THROWS_WITH(([&] { check_sampler_state(rng, state, "test"); }()), mlt::contains("this run's is 'rng'"));
}

TEST_CASE("EpisodeSampler: a MAML run resumed from a checkpoint continues bit for bit", "[tasks][episodes][io]") {
  using Model = metalearn::nn::Objective<metalearn::nn::Mlp<double>, metalearn::nn::SoftmaxCrossEntropy>;
  const auto ds = traced_dataset<double>(10, {5}, 6);
  const tasks::ClassPool<double> pool(ds, iota(10));
  const Model model(metalearn::nn::Mlp<double>({6, 8, 3}, metalearn::nn::Tanh{}), metalearn::nn::SoftmaxCrossEntropy{});
  metalearn::MamlOptions mo;
  mo.inner_lr = 0.1;
  mo.threads = 2;
  metalearn::TrainerOptions to;
  to.meta_batch = 3;
  const auto make_theta = [&] {
    Rng rng(5);
    metalearn::Vector<double> theta(model.parameter_count());
    model.initialize(theta, rng);
    return theta;
  };
  // straight through: 8 iterations
  metalearn::Maml<Model> m1(model, mo);
  metalearn::optim::Adam<double> a1(model.parameter_count(), {0.01});
  tasks::EpisodeSampler<double> s1(pool, {3, 1, 2}, 7);
  metalearn::MetaTrainer t1(m1, a1, s1, to);
  auto straight = make_theta();
  t1.run(straight, 8);
  // 4, checkpoint, fresh objects (another seed), load, 4 more
  mlt::TempDir dir;
  const std::string path = dir.file("episodes.ckpt");
  {
    metalearn::Maml<Model> m(model, mo);
    metalearn::optim::Adam<double> a(model.parameter_count(), {0.01});
    tasks::EpisodeSampler<double> s(pool, {3, 1, 2}, 7);
    metalearn::MetaTrainer t(m, a, s, to);
    auto theta = make_theta();
    t.run(theta, 4);
    metalearn::io::save_checkpoint(path, m.describe(), theta, a, t, s);
  }
  metalearn::Maml<Model> m(model, mo);
  metalearn::optim::Adam<double> a(model.parameter_count(), {0.01});
  tasks::EpisodeSampler<double> s(pool, {3, 1, 2}, 1234);
  metalearn::MetaTrainer t(m, a, s, to);
  metalearn::Vector<double> theta = metalearn::Vector<double>::Zero(model.parameter_count());
  metalearn::io::load_checkpoint(path, m.describe(), theta, a, t, s);
  CHECK(s.episodes() == 12);
  t.run(theta, 4);
  CHECK(theta == straight);  // bit for bit
  CHECK(s.episodes() == s1.episodes());
  // the same file into a sampler of another shape: refused, nothing changed
  tasks::EpisodeSampler<double> other(pool, {2, 1, 2}, 3);
  const auto before = theta;
  CHECK_THROWS_WITH(([&] { metalearn::io::load_checkpoint(path, m.describe(), theta, a, t, other); }()), mlt::contains("the checkpoint's task sampler is 'tasks::EpisodeSampler(3-way"));
  CHECK(theta == before);
  CHECK(other.episodes() == 0);
}

TEST_CASE("checkpoint: a version 1 file loads into a bare Rng and is refused by an episode sampler",
          "[tasks][episodes][io]") {
  const std::string file = std::string(METALEARN_SOURCE_DIR) + "/tests/fuzz/corpus/checkpoint/v1-valid-float-adam.ckpt";
  const auto bytes = mlt::read_bytes(file);
  const auto c = metalearn::io::decode_training<float>(bytes.data(), bytes.size());
  CHECK(c.sampler.kind == "rng");
  REQUIRE(c.sampler.words.size() == 4);
  Rng rng;
  check_sampler_state(rng, c.sampler, "test");
  restore_sampler_state(rng, c.sampler);
  CHECK(rng.state() == Rng::State{c.sampler.words[0], c.sampler.words[1], c.sampler.words[2], c.sampler.words[3]});
  const auto ds = traced_dataset<float>(4, {3});
  const tasks::ClassPool<float> pool(ds, iota(4));
  tasks::EpisodeSampler<float> s(pool, {2, 1, 1}, 1);
  CHECK_THROWS_WITH(([&] { check_sampler_state(s, c.sampler, "test"); }()), mlt::contains("the checkpoint's task sampler is 'rng'"));
}
