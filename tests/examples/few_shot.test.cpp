// The Omniglot few-shot example's code path on the committed subset (tests/fixtures/omniglot:
// 3 alphabets, 57 characters): loading the converted files, a missing folder, converting the
// official zips on first use, a short meta-training run that must learn, a run resumed from a
// checkpoint bit for bit, the baselines, the report and the figure.
#include <few_shot.hpp>

#include <metalearn/io/checkpoint.hpp>

#include <catch.hpp>
#include <json.hpp>
#include <temp_dir.hpp>
#include <test_support.hpp>

#include <cstdlib>
#include <string>

namespace {
const std::string kFixture = std::string(METALEARN_SOURCE_DIR) + "/tests/fixtures/omniglot";

few_shot::Config small_config() {
  few_shot::Config c;
  c.train_classes = 40;  // of the subset's 57 characters; 17 (68 rotated classes) for testing
  c.iterations = 300;
  c.meta_batch = 8;
  c.threads = 2;
  c.eval_episodes = 200;
  c.monitor_every = 150;
  c.monitor_episodes = 50;
  c.pretrain_epochs = 2;
  c.finetune_steps = 30;
  return c;
}
}  // namespace

TEST_CASE("few_shot: the committed converted subset loads with its index", "[example][omniglot]") {
  const auto o = few_shot::load(kFixture + "/idx", "", METALEARN_SOURCE_DIR);
  CHECK(o.drawings.size() == 1140);
  CHECK(o.drawings.classes == 57);
  CHECK(o.drawings.feature_count() == 784);
  REQUIRE(o.characters.size() == 57);
  CHECK(o.characters[0].alphabet == "Alphabet_of_the_Magi");
  CHECK(o.characters[37].set == "evaluation");
  CHECK(o.characters[37].alphabet == "Angelic");
  CHECK(o.alphabets[0] == 0);
  CHECK(o.alphabets[1139] == 2);
  for (int c = 0; c < 57; ++c) CHECK(o.drawings.labels[c * 20] == c);  // 20 drawings per character, in order
  CHECK(o.drawings.features.minCoeff() == 0.0f);
  CHECK(o.drawings.features.maxCoeff() == 1.0f);
  // the alphabet grouping is one of characters: the three alphabets' characters
  CHECK(metalearn::tasks::classes_in_groups(o.drawings.labels, 57, o.alphabets, {1}).size() == 17);
}

TEST_CASE("few_shot: a folder without Omniglot says what to download", "[example][omniglot]") {
  mlt::TempDir dir;
  CHECK_THROWS_WITH(few_shot::load(dir.path().string(), "", METALEARN_SOURCE_DIR),
                    mlt::contains("images_background.zip and images_evaluation.zip from "
                                  "https://github.com/brendenlake/omniglot"));
}

TEST_CASE("few_shot: the official zips are converted on first use", "[example][omniglot]") {
  if (std::system("/usr/bin/python3 -c 'import PIL' >/dev/null 2>&1") != 0) {
    WARN("skipped: converting the zips needs Debian's python3-pil (apt-get install python3-pil)");
    return;
  }
  mlt::TempDir cache;
  const auto o = few_shot::load(kFixture, cache.file("omniglot"), METALEARN_SOURCE_DIR);
  CHECK(o.directory == cache.file("omniglot"));
  CHECK(o.drawings.size() == 1140);
  const auto committed = few_shot::load(kFixture + "/idx", "", METALEARN_SOURCE_DIR);
  CHECK(o.drawings.features == committed.drawings.features);
}

TEST_CASE("few_shot: a short meta-training run learns well above chance, beside the baselines",
          "[example][omniglot]") {
  const auto c = small_config();
  const auto o = few_shot::load(kFixture + "/idx", "", METALEARN_SOURCE_DIR);
  const auto s = few_shot::split(o, c.train_classes, c.split_seed);
  CHECK(s.train.classes() == 160);
  CHECK(s.test.classes() == 68);
  const few_shot::Run r = few_shot::run_seed(c, s, 1);
  REQUIRE(r.steps.size() == 4);  // 0 … 3
  const double before = r.by_steps[0].interval.mean, after = r.by_steps[1].interval.mean;
  INFO("query accuracy before adaptation " << before << ", after one step " << after);
  CHECK(before < 0.35);              // θ alone cannot know an episode's random labels: chance is 0.2
  CHECK(after > 0.35);               // one step on one example per class
  CHECK(after > before + 0.15);
  CHECK(r.maml.interval.count == 200);
  CHECK(r.monitor_accuracy.size() == 3);
  CHECK(r.ncm.interval.mean > 0.25);  // the baselines run on the same episodes
  CHECK(r.pretrain.interval.mean > 0.25);
  CHECK(r.skipped == 0);
  const auto json = mlt::json::parse(few_shot::to_json(c, o, {r}));
  CHECK(json["runs"][0]["maml"]["episodes"].n == 200);
  CHECK(json["config"]["ways"].n == 5);
  CHECK(json["anchor"]["accuracy"].n == Approx(0.897));
  const std::string svg = few_shot::to_svg(c, {r});
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(few_shot::table(c, {r}).find("89.7 ± 1.1 %") != std::string::npos);
}

TEST_CASE("few_shot: --norm layer puts LayerNorm on every hidden layer, and a short run still learns",
          "[example][omniglot][layer-norm]") {
  few_shot::Config c = small_config();
  REQUIRE(few_shot::parse({"--norm", "layer", "--hidden", "64,32", "--baselines", "none"}, c));
  CHECK(c.layer_norm);
  CHECK_THROWS_WITH(few_shot::parse({"--norm", "batch"}, c), mlt::contains("--norm takes none or layer, got 'batch'"));
  const auto model = few_shot::network(c.hidden, c.ways, 784, c.layer_norm);
  CHECK(model.describe() == "784-64(ln 1e-05, relu)-32(ln 1e-05, relu)-5(identity) softmax_cross_entropy");
  const auto o = few_shot::load(kFixture + "/idx", "", METALEARN_SOURCE_DIR);
  const auto s = few_shot::split(o, c.train_classes, c.split_seed);
  const few_shot::Run r = few_shot::run_seed(c, s, 1);
  const double before = r.by_steps[0].interval.mean, after = r.by_steps[1].interval.mean;
  INFO("query accuracy before adaptation " << before << ", after one step " << after);
  CHECK(after > 0.35);
  CHECK(after > before + 0.15);
  CHECK(r.skipped == 0);
  const auto json = mlt::json::parse(few_shot::to_json(c, o, {r}));
  CHECK(json["config"]["layer_norm"].b);
  CHECK(few_shot::settings(c).find("layer normalisation (eps 1e-5") != std::string::npos);
}

TEST_CASE("few_shot: --algorithm meta-sgd, maml++, anil and reptile learn on the same episodes", "[example][omniglot]") {
  const auto o = few_shot::load(kFixture + "/idx", "", METALEARN_SOURCE_DIR);
  for (const char* algorithm : {"meta-sgd", "maml++", "anil", "reptile"}) {
    few_shot::Config c = small_config();
    REQUIRE(few_shot::parse({"--algorithm", algorithm, "--hidden", "64,32", "--baselines", "none"}, c));
    if (std::string(algorithm) == "maml++") {  // LSLR's rates start at the inner rate; annealing switched on
      REQUIRE(few_shot::parse({"--meta-lr-schedule", "cosine"}, c));
      CHECK(few_shot::settings(c).find("Adam 0.001 annealed to 0 by a cosine") != std::string::npos);
      c.inner_steps = 2;
      c.first_order_iterations = 50;
      c.multi_step_iterations = 100;
    }
    if (std::string(algorithm) == "reptile") {  // its meta-gradient needs several inner steps;
      c.inner_steps = 5;                          // the authors' outer step: SGD, ε annealed to 0
      c.eval_steps = 5;
      c.inner_lr = 0.1;
      REQUIRE(few_shot::parse({"--meta-optimizer", "sgd", "--meta-lr", "1", "--meta-lr-schedule", "linear"}, c));
      CHECK(few_shot::settings(c).find("SGD 1 annealed linearly to 0") != std::string::npos);
      // the authors' episodes: more shots in training, inner batches larger than a test support set
      REQUIRE(few_shot::parse({"--train-shots", "3", "--inner-batch", "10"}, c));
      CHECK(few_shot::settings(c).find("meta-trained on 3-shot episodes") != std::string::npos);
      CHECK(few_shot::settings(c).find("Reptile order") == std::string::npos);
    }
    const auto s = few_shot::split(o, c.train_classes, c.split_seed);
    const few_shot::Run r = few_shot::run_seed(c, s, 1);
    const double before = r.by_steps[0].interval.mean, after = r.by_steps[1].interval.mean;
    INFO(r.algorithm << ": query accuracy before adaptation " << before << ", after one step " << after
                     << ", after " << r.steps.back() << " steps " << r.by_steps.back().interval.mean);
    CHECK(after > 0.35);
    CHECK(after > before + 0.15);
    CHECK(few_shot::table(c, {r}).find(std::string("metalearn ") + examples::algorithm_label(c.algorithm)) !=
          std::string::npos);
  }
  few_shot::Config b1, b2, b3;
  CHECK_THROWS_WITH(few_shot::parse({"--algorithm", "protonet"}, b1), mlt::contains("expects maml, meta-sgd"));
  CHECK_THROWS_WITH(few_shot::parse({"--inner-lr-max", "1"}, b2), mlt::contains("--inner-lr-max is Meta-SGD's"));
  CHECK_THROWS_WITH(few_shot::parse({"--multi-step-iterations", "5"}, b3), mlt::contains("are MAML++'s"));
  few_shot::Config b5;
  CHECK_THROWS_WITH(few_shot::parse({"--algorithm", "cavia"}, b5), mlt::contains("the sine example's"));
  few_shot::Config b4;
  CHECK_THROWS_WITH(few_shot::parse({"--meta-lr-schedule", "step"}, b4), mlt::contains("takes constant, cosine or linear"));
  few_shot::Config b6;
  CHECK_THROWS_WITH(few_shot::parse({"--meta-optimizer", "rmsprop"}, b6), mlt::contains("takes adam or sgd"));
  few_shot::Config b7, b8, b9;
  CHECK_THROWS_WITH(few_shot::parse({"--eval-inner-batch", "2"}, b7), mlt::contains("are Reptile's"));
  CHECK_THROWS_WITH(few_shot::parse({"--algorithm", "reptile", "--train-shots", "2", "--inner-batch", "11"}, b8),
                    mlt::contains("--inner-batch (11) is larger than a training support set (10 examples)"));
  CHECK_THROWS_WITH(few_shot::parse({"--algorithm", "reptile", "--eval-inner-batch", "6"}, b9),
                    mlt::contains("--eval-inner-batch (6) is larger than a test support set (5 examples)"));
}

TEST_CASE("few_shot: an Omniglot run resumed from a checkpoint continues bit for bit", "[example][omniglot][io]") {
  const auto o = few_shot::load(kFixture + "/idx", "", METALEARN_SOURCE_DIR);
  const auto s = few_shot::split(o, 40, 1);
  auto c = small_config();
  c.hidden = {32, 16};
  const auto model = few_shot::network(c.hidden, c.ways);
  metalearn::TrainerOptions to;
  to.meta_batch = 4;
  const auto start = [&] {
    metalearn::Rng rng(3);
    metalearn::Vector<float> theta(model.parameter_count());
    model.initialize(theta, rng);
    return theta;
  };
  metalearn::MamlOptions mo;  // the example's MAML with its defaults (inner rate 0.4, one step)
  mo.inner_lr = c.inner_lr;
  mo.inner_steps = c.inner_steps;
  mo.threads = c.threads;
  using Maml = metalearn::Maml<few_shot::Classifier>;
  Maml m1(model, mo);
  metalearn::optim::Adam<float> a1(model.parameter_count());
  few_shot::Sampler s1(s.train, {5, 1, 1}, 9);
  metalearn::MetaTrainer t1(m1, a1, s1, to);
  auto straight = start();
  t1.run(straight, 10);
  mlt::TempDir dir;
  const std::string path = dir.file("omniglot.ckpt");
  {
    Maml m(model, mo);
    metalearn::optim::Adam<float> a(model.parameter_count());
    few_shot::Sampler sm(s.train, {5, 1, 1}, 9);
    metalearn::MetaTrainer t(m, a, sm, to);
    auto theta = start();
    t.run(theta, 6);
    metalearn::io::save_checkpoint(path, m.describe(), theta, a, t, sm);
  }
  Maml m(model, mo);
  metalearn::optim::Adam<float> a(model.parameter_count());
  few_shot::Sampler sm(s.train, {5, 1, 1}, 1);
  metalearn::MetaTrainer t(m, a, sm, to);
  metalearn::Vector<float> theta = metalearn::Vector<float>::Zero(model.parameter_count());
  metalearn::io::load_checkpoint(path, m.describe(), theta, a, t, sm);
  t.run(theta, 4);
  CHECK(theta == straight);
  // a test-class sampler (another pool) refuses the checkpoint
  few_shot::Sampler test_sampler(s.test, {5, 1, 1}, 9);
  CHECK_THROWS_WITH(metalearn::io::load_checkpoint(path, m.describe(), theta, a, t, test_sampler),
                    mlt::contains("classes 160 (40 x 4 rotations)"));
}
