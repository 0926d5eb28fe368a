// MAML (or Meta-SGD, MAML++, ANIL) on sinusoid regression, reproducing the MAML paper's §5.1
// experiment and Meta-SGD's. Run with --help.
#include "sine_regression.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <unistd.h>

namespace {

// One progress line, rewritten in place on a terminal; a plain line every few seconds otherwise.
sine::ProgressSink progress_printer(bool quiet) {
  if (quiet) return {};
  const bool terminal = isatty(fileno(stderr)) != 0;
  const double period = terminal ? 0.2 : 5.0;
  auto next = std::make_shared<double>(period);
  auto first = std::make_shared<long>(-1);  // iterations done before this run (--resume)
  return [terminal, period, next, first](long i, long total, double loss, double elapsed) {
    if (*first < 0) *first = i - 1;
    if (elapsed < *next && i != total) return;
    *next = elapsed + period;
    const double rate = elapsed > 0 ? static_cast<double>(i - *first) / elapsed : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total - i) / rate : 0.0;
    std::fprintf(stderr, "%siteration %ld/%ld  meta-loss %.4f  %.0f it/s  ETA %.0f s%s", terminal ? "\r" : "", i, total,
                 loss, rate, eta, terminal ? "   " : "\n");
    if (terminal && i == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "sine_regression: cannot write " << path << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  sine::Config config;
  try {
    if (!sine::parse(std::vector<std::string>(argv + 1, argv + argc), config)) {
      std::cout << sine::usage();
      return 0;
    }
  } catch (const sine::UsageError& e) {
    std::cerr << "sine_regression: " << e.what() << "\n(run sine_regression --help for the flags)\n";
    return 2;
  }
  try {
    if (!config.quiet)
      std::cerr << examples::algorithm_label(config.algorithm) << " (order " << config.order << ", "
                << config.inner_steps << " inner step"
                << (config.inner_steps == 1 ? "" : "s") << ", alpha " << config.inner_lr << ") on sine tasks: "
                << config.iterations << " meta-iterations of " << config.meta_batch << " tasks, " << config.threads
                << " thread" << (config.threads == 1 ? "" : "s") << ", seed " << config.seed << "\n";
    if (!config.quiet && !config.resume.empty())
      std::cerr << "resuming from " << config.resume << "\n";
    const sine::Report report = sine::run(config, progress_printer(config.quiet));
    if (!config.quiet && !config.resume.empty())
      std::cerr << "resumed at iteration " << report.resumed_from << "\n";
    if (!config.quiet && !config.save.empty())
      std::cerr << "checkpoint of iteration " << config.iterations << " written to " << config.save << " ("
                << report.checkpoints_written << " write" << (report.checkpoints_written == 1 ? "" : "s") << ")\n";
    std::cout << sine::table(report);
    std::cout << "meta-training " << report.train_seconds << " s (" << static_cast<long>(report.iterations_per_second)
              << " it/s), baseline " << report.baseline_seconds << " s, evaluation " << report.eval_seconds << " s\n";
    bool ok = true;
    if (!config.report.empty()) ok = write_file(config.report, sine::to_json(report)) && ok;
    if (!config.plot.empty()) ok = write_file(config.plot, sine::to_svg(report)) && ok;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "sine_regression: " << e.what() << "\n";
    return 1;
  }
}
