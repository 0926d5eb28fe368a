// Labelled datasets (data/dataset.hpp) and mini-batches (data/minibatch.hpp).
#include <metalearn/data/dataset.hpp>
#include <metalearn/data/minibatch.hpp>

#include <catch.hpp>
#include <test_support.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace data = metalearn::data;
namespace io = metalearn::io;
using metalearn::Index;
using metalearn::Matrix;

namespace {

// n items of 2 × 3 u8 pixels (item i, pixel p: 10i + p) and labels i mod classes.
io::IdxArray pixels(std::uint32_t n) {
  io::IdxArray a{io::IdxType::u8, {n, 2, 3}, {}};
  for (std::uint32_t i = 0; i < n; ++i)
    for (int p = 0; p < 6; ++p) a.bytes.push_back(static_cast<unsigned char>((10 * i + static_cast<unsigned>(p)) % 256));
  return a;
}
io::IdxArray label_file(std::uint32_t n, int classes) {
  io::IdxArray a{io::IdxType::u8, {n}, {}};
  for (std::uint32_t i = 0; i < n; ++i) a.bytes.push_back(static_cast<unsigned char>(static_cast<int>(i) % classes));
  return a;
}

data::LabelledDataset<double> small(std::uint32_t n = 10, int classes = 3) {
  return data::from_idx<double>(pixels(n), label_file(n, classes), classes);
}

}  // namespace

TEST_CASE("dataset: from IDX arrays, bytes scaled to [0, 1], one column per item", "[data]") {
  const auto ds = data::from_idx<float>(pixels(4), label_file(4, 3), 3, "im", "lb");
  CHECK(ds.size() == 4);
  CHECK(ds.feature_count() == 6);
  CHECK(ds.classes == 3);
  CHECK(ds.features(5, 2) == static_cast<float>(25) * (1.0f / 255.0f));  // item 2, pixel 5 (row-major)
  CHECK(ds.labels[3] == 0);
  CHECK(ds.class_counts() == std::vector<Index>{2, 1, 1});
  // other element types are taken as they are
  io::IdxArray f{io::IdxType::i16, {2, 1}, {0xff, 0xfe, 0x01, 0x00}};
  const auto raw = data::from_idx<double>(f, label_file(2, 2), 2);
  CHECK(raw.features(0, 0) == -2);
  CHECK(raw.features(0, 1) == 256);
}

TEST_CASE("dataset: images and labels that do not fit together are refused naming the files", "[data][bad-input]") {
  const auto expect = [](auto&& f, const std::string& a, const std::string& b) {
    try {
      f();
      FAIL("nothing was thrown");
    } catch (const metalearn::file_error& e) {
      CHECK_THAT(std::string(e.what()), mlt::contains(a));
      CHECK_THAT(std::string(e.what()), mlt::contains(b));
    }
  };
  expect([] { data::from_idx<double>(pixels(4), label_file(5, 3), 3, "im.idx", "lb.idx"); }, "im.idx' holds 4 items",
         "'lb.idx' holds 5 labels");
  expect([] { data::from_idx<double>(pixels(4), label_file(4, 10), 3, "im", "lb.idx"); }, "lb.idx': label 3 is 3",
         "expected 0 to 2");
  io::IdxArray two_d = label_file(4, 3);
  two_d.dims = {2, 2};
  expect([&] { data::from_idx<double>(pixels(4), two_d, 3, "im", "lb.idx"); }, "lb.idx' has 2 dimensions", "expected 1");
  io::IdxArray floats{io::IdxType::f32, {1}, {0, 0, 0, 0}};
  expect([&] { data::from_idx<double>(pixels(1), floats, 3, "im", "lb.idx"); }, "f32 elements", "integer labels");
  CHECK_THROWS_AS(data::from_idx<double>(pixels(1), label_file(1, 1), 0), metalearn::invalid_argument);
}

TEST_CASE("dataset: subsets by index list and by class", "[data]") {
  const auto ds = small(10, 3);
  const auto s = data::subset(ds, {9, 0, 0});
  CHECK(s.size() == 3);
  CHECK(s.features.col(0) == ds.features.col(9));
  CHECK(s.labels[0] == 0);
  CHECK(s.classes == 3);
  CHECK_THROWS_AS(data::subset(ds, {10}), metalearn::invalid_argument);
  CHECK_THROWS_AS(data::subset(ds, {-1}), metalearn::invalid_argument);

  const auto kept = data::subset_by_class(ds, {2, 0});
  CHECK(kept.size() == 7);  // labels 0: items 0, 3, 6, 9; 2: items 2, 5, 8
  CHECK(kept.classes == 3);
  CHECK(kept.features.col(1) == ds.features.col(2));
  const auto remapped = data::subset_by_class(ds, {2, 0}, true);
  CHECK(remapped.classes == 2);
  CHECK(remapped.labels[0] == 1);  // item 0, class 0: position 1 in {2, 0}
  CHECK(remapped.labels[1] == 0);  // item 2, class 2: position 0
  CHECK_THROWS_WITH(data::subset_by_class(ds, {3}), mlt::contains("class 3 is not one of the dataset's 0 to 2"));
  CHECK_THROWS_WITH(data::subset_by_class(ds, {1, 1}), mlt::contains("listed twice"));
}

TEST_CASE("mini-batches: every example once per epoch, in a seeded order, the last batch kept or dropped",
          "[data][minibatch]") {
  const auto ds = small(10, 3);
  for (bool drop : {false, true}) {
    CAPTURE(drop);
    data::MiniBatches<double> mb(ds, {4, drop}, 7);
    CHECK(mb.batches_per_epoch() == (drop ? 2 : 3));
    for (int epoch = 1; epoch <= 3; ++epoch) {
      std::multiset<double> seen;  // the first feature identifies an item: 10i / 255
      std::vector<Index> sizes;
      for (Index b = 0; b < mb.batches_per_epoch(); ++b) {
        const auto& batch = mb.next();
        CHECK(mb.epoch() == epoch);
        sizes.push_back(batch.size());
        for (Index j = 0; j < batch.size(); ++j) {
          seen.insert(batch.inputs(0, j));
          const Index item = static_cast<Index>(std::lround(batch.inputs(0, j) * 255 / 10));
          CHECK(batch.targets[j] == ds.labels[item]);
          CHECK(batch.inputs.col(j) == ds.features.col(item));
        }
      }
      CHECK(sizes == (drop ? std::vector<Index>{4, 4} : std::vector<Index>{4, 4, 2}));
      CHECK(seen.size() == (drop ? 8U : 10U));
      CHECK(std::set<double>(seen.begin(), seen.end()).size() == seen.size());  // no repeats
    }
  }
}

TEST_CASE("mini-batches: the order is reproducible by seed, differs between seeds and epochs", "[data][minibatch]") {
  const auto ds = small(50, 5);
  const auto orders = [&](std::uint64_t seed) {
    data::MiniBatches<double> mb(ds, {50}, seed);
    std::vector<std::vector<double>> epochs;
    for (int e = 0; e < 3; ++e) {
      const auto& b = mb.next();
      std::vector<double> row(static_cast<std::size_t>(b.size()));
      for (Index j = 0; j < b.size(); ++j) row[static_cast<std::size_t>(j)] = b.inputs(0, j);
      epochs.push_back(row);
    }
    return epochs;
  };
  const auto a = orders(1), b = orders(1), c = orders(2);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a[0] != a[1]);
  data::MiniBatches<double> fixed(ds, {50, false, false}, 1);  // shuffle off: the dataset's order
  CHECK(fixed.next().inputs == ds.features);
}

TEST_CASE("mini-batches: restore continues the same order mid-epoch", "[data][minibatch]") {
  const auto ds = small(23, 4);
  data::MiniBatches<double> a(ds, {5}, 11);
  for (int i = 0; i < 7; ++i) a.next();  // into epoch 2 (5 batches per epoch)
  const metalearn::Rng saved = a.epoch_rng();
  const Index position = a.position(), epoch = a.epoch();
  data::MiniBatches<double> b(ds, {5}, 999);
  b.restore(saved, position, epoch);
  for (int i = 0; i < 12; ++i) {
    const auto& x = a.next();
    const auto& y = b.next();
    REQUIRE(x.inputs == y.inputs);
    REQUIRE(x.targets == y.targets);
    REQUIRE(a.epoch() == b.epoch());
  }
  CHECK_THROWS_AS(b.restore(saved, 6), metalearn::invalid_argument);
  CHECK_THROWS_AS(b.restore(saved, -1), metalearn::invalid_argument);
}

TEST_CASE("mini-batches: bad options are refused", "[data][minibatch][bad-input]") {
  const auto ds = small(10, 3);
  CHECK_THROWS_WITH(data::MiniBatches<double>(ds, {0}, 1), mlt::contains("batch_size must be in [1, 10]"));
  CHECK_THROWS_WITH(data::MiniBatches<double>(ds, {11}, 1), mlt::contains("got 11"));
  data::LabelledDataset<double> empty;
  empty.classes = 2;
  CHECK_THROWS_WITH(data::MiniBatches<double>(empty, {1}, 1), mlt::contains("empty"));
  auto bad = ds;
  bad.labels[4] = 7;
  CHECK_THROWS_WITH(data::MiniBatches<double>(bad, {2}, 1), mlt::contains("label 4 is 7"));
}
