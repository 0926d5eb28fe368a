// The sine-regression example's code path: flags, a short run, the report, the figure.
#include <sine_regression.hpp>

#include <catch.hpp>
#include <json.hpp>
#include <temp_dir.hpp>

#include <cstdlib>
#include <string>

namespace {
sine::Config short_run() {
  sine::Config c;
  c.iterations = 2000;  // at alpha = 0.001 MAML needs ~2000 to halve the MSE in 10 steps
  c.eval_tasks = 60;
  c.quiet = true;
  return c;
}
}  // namespace

TEST_CASE("sine example: a short run reports every row, and MAML beats the pretrained baseline", "[example]") {
  const sine::Report r = sine::run(short_run());
  REQUIRE(r.eval.size() == 6);
  for (const auto& row : r.eval) {
    CHECK(row.steps == std::vector<int>{0, 1, 5, 10});
    REQUIRE(row.mse.size() == 4);
    REQUIRE(row.ci95.size() == 4);
    REQUIRE(row.median.size() == 4);
    REQUIRE(row.worse.size() == 4);
    CHECK(row.worse[0] == 0);  // no task is worse than itself
    for (std::size_t s = 0; s < 4; ++s) {
      CHECK(std::isfinite(row.mse[s]));
      CHECK(row.ci95[s] >= 0);
      CHECK(row.median[s] > 0);
      CHECK(row.worse[s] <= 60);
    }
    CHECK(row.median[3] < row.median[0]);
  }
  auto find = [&](const std::string& method, int shots) -> const sine::EvalRow& {
    for (const auto& row : r.eval)
      if (row.method == method && row.shots == shots) return row;
    FAIL("missing row " << method << " K = " << shots);
    return r.eval[0];
  };
  for (int shots : {5, 10, 20}) {
    const auto& maml = find("maml", shots);
    const auto& pre = find("pretrained", shots);
    INFO("K = " << shots << ": MAML " << maml.mse[1] << " / " << maml.mse[3] << ", pretrained " << pre.mse[1] << " / "
                << pre.mse[3]);
    CHECK(maml.mse[1] < pre.mse[1]);      // after 1 step
    CHECK(maml.mse[3] < pre.mse[3]);      // after 10 steps
    CHECK(maml.mse[3] < 0.5 * maml.mse[0]);  // adaptation pays off
  }
  CHECK(r.train_seconds > 0);
  CHECK(r.iterations_per_second > 0);
  CHECK(r.panels.size() == 4);

  // the JSON report parses and has the documented structure
  const auto json = mlt::json::parse(sine::to_json(r));
  for (const char* key : {"iterations", "order", "inner_steps", "inner_lr", "meta_lr", "meta_batch", "shots", "hidden",
                          "threads", "seed", "eval_tasks", "report", "plot", "quiet"})
    CHECK(json["config"].has(key));
  CHECK(json["config"]["iterations"].n == 2000);
  CHECK(json["config"]["hidden"].a.size() == 2);
  CHECK(json["train_seconds"].n > 0);
  CHECK(json["iterations_per_second"].n > 0);
  REQUIRE(json["eval"].a.size() == 6);
  for (const auto& e : json["eval"].a) {
    CHECK((e["method"].s == "maml" || e["method"].s == "pretrained"));
    CHECK(e["steps"].a.size() == 4);
    CHECK(e["mse"].a.size() == 4);
    CHECK(e["ci95"].a.size() == 4);
    CHECK(e["median"].a.size() == 4);
    CHECK(e["worse"].a.size() == 4);
  }

  // the figure: four panels of four curves, the support points, a legend
  const std::string svg = sine::to_svg(r);
  std::size_t curves = 0;
  for (std::size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++curves;
  CHECK(curves == 16);
  for (const char* text : {"MAML, K = 5", "MAML, K = 10", "pretrained, K = 5", "pretrained, K = 10", "ground truth",
                           "pre-update", "1 grad step", "10 grad steps"})
    CHECK(svg.find(text) != std::string::npos);
}

TEST_CASE("sine example: --algorithm meta-sgd, maml++, anil and reptile run the same experiment and learn",
          "[example]") {
  for (const char* algorithm : {"meta-sgd", "maml++", "anil", "reptile", "cavia"}) {
    sine::Config c = short_run();
    // ANIL adapts the 41 weights of the head only, which needs a larger step on these tasks;
    // CAVIA's rate is its context's (the authors' 1)
    const std::string a = algorithm;
    const std::string lr = a == "anil" ? "0.1" : a == "reptile" ? "0.01" : a == "cavia" ? "1" : "0.005";
    REQUIRE(sine::parse({"--algorithm", algorithm, "--inner-lr", lr, "--quiet"}, c));
    if (std::string(algorithm) == "reptile") c.inner_steps = 5;
    c.iterations = 1500;
    c.eval_tasks = 60;
    if (std::string(algorithm) == "maml++") {
      c.inner_steps = 2;
      c.first_order_iterations = 100;
      c.multi_step_iterations = 500;
    }
    const sine::Report r = sine::run(c);
    INFO(algorithm << ": " << r.algorithm);
    REQUIRE(r.eval.size() == 6);
    CHECK(r.eval[0].method == algorithm);
    CHECK(r.algorithm.find(std::string(sine::method_label(algorithm)) == "Meta-SGD" ? "MetaSgd("
                           : std::string(algorithm) == "maml++"                   ? "MamlPlusPlus("
                           : std::string(algorithm) == "reptile"                  ? "Reptile("
                           : std::string(algorithm) == "cavia"                    ? "Cavia("
                                                                                  : "Anil(") == 0);
    for (const auto& row : r.eval)
      if (row.method == algorithm) CHECK(row.mse[1] < 0.7 * row.mse[0]);  // adaptation pays off
    CHECK(sine::table(r).find(sine::method_label(algorithm)) != std::string::npos);
    CHECK(sine::to_svg(r).find(std::string(sine::method_label(algorithm)) + ", K = 5") != std::string::npos);
  }
}

TEST_CASE("sine example: CAVIA's context can start from the support set and learns", "[example]") {
  sine::Config c = short_run();
  REQUIRE(sine::parse({"--algorithm", "cavia", "--inner-lr", "1", "--context-start", "support", "--quiet"}, c));
  c.iterations = 1500;
  c.eval_tasks = 60;
  const sine::Report r = sine::run(c);
  INFO(r.algorithm);
  CHECK(r.algorithm.find("context 5 from the support set (summary 2)") != std::string::npos);
  for (const auto& row : r.eval)
    if (row.method == "cavia") CHECK(row.mse[1] < 0.7 * row.mse[0]);
  CHECK(sine::table(r).find("starting at W_s s + b_s") != std::string::npos);
  CHECK(sine::training_signature(r.config).find("--context-start support") != std::string::npos);
}

TEST_CASE("sine example: Meta-SGD's protocol draws frequencies and prints that paper's numbers", "[example]") {
  sine::Config c = short_run();
  REQUIRE(sine::parse({"--protocol", "meta-sgd", "--algorithm", "meta-sgd", "--inner-lr", "0.005", "--inner-lr-max",
                       "0.02", "--shots", "5", "--quiet"},
                      c));
  c.iterations = 300;
  c.eval_tasks = 10;
  const sine::Report r = sine::run(c);
  const std::string t = sine::table(r);
  CHECK(t.find("(Meta-SGD paper, Meta-SGD)  5  -         0.900") != std::string::npos);
  CHECK(t.find("(Meta-SGD paper, MAML) 20  -         0.710") != std::string::npos);
  CHECK(t.find("MAML paper") == std::string::npos);
  const auto json = mlt::json::parse(sine::to_json(r));
  CHECK(json["config"]["protocol"].s == "meta-sgd");
  CHECK(json["config"]["algorithm"].s == "meta-sgd");
  CHECK(json["algorithm"].s.find("initial_lr 0.005 to 0.02") != std::string::npos);
}

TEST_CASE("sine example: a seed reproduces the run exactly", "[example]") {
  sine::Config c = short_run();
  c.iterations = 200;
  c.eval_tasks = 10;
  const auto a = sine::run(c), b = sine::run(c);
  for (std::size_t i = 0; i < a.eval.size(); ++i) CHECK(a.eval[i].mse == b.eval[i].mse);
}

TEST_CASE("sine example: flags", "[example][bad-input]") {
  sine::Config c;
  CHECK(sine::parse({"--iterations", "500", "--order", "1", "--hidden", "64,32,16", "--inner-lr", "0.02", "--quiet"}, c));
  CHECK(c.iterations == 500);
  CHECK(c.order == 1);
  CHECK(c.hidden == std::vector<metalearn::Index>{64, 32, 16});
  CHECK(c.inner_lr == 0.02);
  CHECK(c.quiet);
  sine::Config d;
  CHECK_FALSE(sine::parse({"--help"}, d));
  for (const auto& bad : std::vector<std::vector<std::string>>{{"--iterations", "ten"},
                                                                {"--order", "3"},
                                                                {"--hidden", "40,,40"},
                                                                {"--hidden", "40,"},
                                                                {"--inner-lr", "-1"},
                                                                {"--inner-lr", "nan"},
                                                                {"--meta-batch", "0"},
                                                                {"--bogus", "1"},
                                                                {"--seed"},
                                                                {"stray"},
                                                                {"--init", "zeros"},
                                                                {"--save-every", "10"},
                                                                {"--save-every", "0", "--save", "x"},
                                                                {"--save", ""},
                                                                {"--resume"},
                                                                {"--algorithm", "protonet"},
                                                                {"--context", "3"},
                                                                {"--algorithm", "cavia", "--context", "0"},
                                                                {"--algorithm", "cavia", "--task-clip", "-1"},
                                                                {"--context-start", "support"},
                                                                {"--algorithm", "cavia", "--context-start", "mean"},
                                                                {"--inner-batch", "5"},
                                                                {"--algorithm", "imaml", "--inner-optimizer", "adam"},
                                                                {"--algorithm", "reptile", "--inner-optimizer", "rmsprop"},
                                                                {"--algorithm", "reptile", "--inner-batch", "11"},
                                                                {"--lambda", "2"},
                                                                {"--algorithm", "imaml", "--cg-iterations", "0"},
                                                                {"--protocol", "cavia"},
                                                                {"--inner-lr-max", "0.1"},
                                                                {"--algorithm", "meta-sgd", "--inner-lr-max", "0.0001"},
                                                                {"--first-order-iterations", "10"},
                                                                {"--algorithm", "anil", "--multi-step-iterations", "5"},
                                                                {"--algorithm", "maml++", "--first-order-iterations", "-1"}}) {
    sine::Config e;
    INFO(bad[0]);
    CHECK_THROWS_AS(sine::parse(bad, e), sine::UsageError);
  }
}

namespace {
sine::Config tiny_run(long iterations) {
  sine::Config c;
  c.iterations = iterations;
  c.eval_tasks = 5;
  c.hidden = {16};
  c.meta_batch = 4;
  c.quiet = true;
  return c;
}
}  // namespace

TEST_CASE("sine example: --save then --resume gives exactly the run that was not interrupted", "[example][resume]") {
  mlt::TempDir dir;
  for (int order : {1, 2}) {
    INFO("order " << order);
    sine::Config whole = tiny_run(60);
    whole.order = order;
    const auto straight = sine::run(whole);
    CHECK(straight.resumed_from == 0);

    sine::Config first = whole;
    first.iterations = 25;
    first.save = dir.file("half.ckpt");
    const auto a = sine::run(first);
    CHECK(a.checkpoints_written == 1);
    CHECK(metalearn::io::read_checkpoint<float>(first.save).iteration == 25);

    sine::Config second = whole;
    second.resume = first.save;
    second.save = dir.file("end.ckpt");
    const auto b = sine::run(second);
    CHECK(b.resumed_from == 25);
    REQUIRE(b.eval.size() == straight.eval.size());
    for (std::size_t i = 0; i < b.eval.size(); ++i) CHECK(b.eval[i].mse == straight.eval[i].mse);  // bit for bit
    CHECK(metalearn::io::read_checkpoint<float>(second.save).iteration == 60);

    // resuming a finished checkpoint trains nothing more and evaluates the same θ
    sine::Config again = whole;
    again.resume = second.save;
    const auto c = sine::run(again);
    for (std::size_t i = 0; i < c.eval.size(); ++i) CHECK(c.eval[i].mse == straight.eval[i].mse);
  }
}

TEST_CASE("sine example: --save-every writes intermediate checkpoints", "[example][resume]") {
  mlt::TempDir dir;
  sine::Config c = tiny_run(50);
  c.save = dir.file("every.ckpt");
  c.save_every = 20;
  std::vector<long> seen;
  const auto r = sine::run(c, [&](long i, long, double, double) {
    if (i == 21 || i == 45) seen.push_back(static_cast<long>(metalearn::io::read_checkpoint<float>(c.save).iteration));
  });
  CHECK(seen == std::vector<long>{20, 40});
  CHECK(r.checkpoints_written == 3);  // 20, 40 and the end
  CHECK(metalearn::io::read_checkpoint<float>(c.save).iteration == 50);
  const auto json = mlt::json::parse(sine::to_json(r));
  CHECK(json["config"]["save_every"].n == 20);
  CHECK(json["checkpoints_written"].n == 3);
}

TEST_CASE("sine example: --resume refuses a checkpoint of other flags, another network or a later iteration",
          "[example][resume][bad-input]") {
  mlt::TempDir dir;
  sine::Config c = tiny_run(20);
  c.save = dir.file("c.ckpt");
  sine::run(c);
  const auto before = mlt::read_bytes(c.save);

  sine::Config lr = tiny_run(40);
  lr.resume = c.save;
  lr.meta_lr = 0.002;
  CHECK_THROWS_WITH(sine::run(lr), mlt::contains("--meta-lr 0.001 (this run: 0.002)"));

  sine::Config net = tiny_run(40);
  net.resume = c.save;
  net.hidden = {8};
  CHECK_THROWS_AS(sine::run(net), metalearn::checkpoint_error);
  CHECK_THROWS_WITH(sine::run(net), mlt::contains("1-16(relu)-1(identity) mse"));

  sine::Config past = tiny_run(10);
  past.resume = c.save;
  CHECK_THROWS_WITH(sine::run(past), mlt::contains("beyond --iterations 10"));

  sine::Config missing = tiny_run(40);
  missing.resume = dir.file("nope.ckpt");
  CHECK_THROWS_WITH(sine::run(missing), mlt::contains("cannot open"));
  CHECK(mlt::read_bytes(c.save) == before);  // a failed resume does not touch the checkpoint
}

#ifdef METALEARN_SINE_BINARY
TEST_CASE("sine example: a malformed flag exits with status 2 and a message", "[example]") {
  const std::string cmd = std::string(METALEARN_SINE_BINARY) + " --order 7 2>/dev/null";
  const int status = std::system(cmd.c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
  const int help = std::system((std::string(METALEARN_SINE_BINARY) + " --help >/dev/null").c_str());
  CHECK(WEXITSTATUS(help) == 0);
  const int every = std::system((std::string(METALEARN_SINE_BINARY) + " --save-every 5 2>/dev/null").c_str());
  CHECK(WEXITSTATUS(every) == 2);
}

TEST_CASE("sine example: the binary saves and resumes, a corrupt checkpoint exits with status 1", "[example][resume]") {
  mlt::TempDir dir;
  const std::string bin = METALEARN_SINE_BINARY, ckpt = dir.file("run.ckpt");
  const std::string common = " --hidden 8 --meta-batch 2 --eval-tasks 3 --quiet >/dev/null 2>&1";
  CHECK(WEXITSTATUS(std::system((bin + " --iterations 10 --save " + ckpt + common).c_str())) == 0);
  CHECK(WEXITSTATUS(std::system((bin + " --iterations 20 --resume " + ckpt + " --save " + ckpt + common).c_str())) == 0);
  CHECK(metalearn::io::read_checkpoint<float>(ckpt).iteration == 20);
  auto bytes = mlt::read_bytes(ckpt);
  bytes[bytes.size() / 2] ^= 0x10;
  mlt::write_bytes(ckpt, bytes);
  const std::string err = dir.file("err.txt");
  CHECK(WEXITSTATUS(std::system((bin + " --iterations 30 --resume " + ckpt + " --hidden 8 --quiet 2>" + err).c_str())) == 1);
  const auto text = mlt::read_bytes(err);
  CHECK_THAT(std::string(text.begin(), text.end()), mlt::contains("checksum mismatch"));
}
#endif
