// MAML (or Meta-SGD, MAML++, ANIL) on Omniglot few-shot episodes with the MAML paper's
// non-convolutional network, beside two baselines: examples/few_shot.hpp has the pieces, README section "Few-shot
// classification" the results. Exit status: 0 on success, 2 for a bad command line or missing
// data, 1 for any other error (a corrupt data file included).
#include "few_shot.hpp"

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#ifndef METALEARN_SOURCE_DIR
#define METALEARN_SOURCE_DIR "."
#endif

int main(int argc, char** argv) {
  few_shot::Config config;
  try {
    if (!few_shot::parse(std::vector<std::string>(argv + 1, argv + argc), config)) {
      std::cout << few_shot::usage();
      return 0;
    }
  } catch (const few_shot::UsageError& e) {
    std::cerr << "few_shot: " << e.what() << "\n";
    return 2;
  }
  try {
    const few_shot::Omniglot data = few_shot::load(config.data, config.cache, METALEARN_SOURCE_DIR);
    const few_shot::Split split = few_shot::split(data, config.train_classes, config.split_seed);
    std::cout << "settings: " << few_shot::settings(config) << "\n";
    if (!config.quiet)
      std::cerr << "loaded " << data.drawings.size() << " drawings of " << data.drawings.classes << " characters from "
                << data.directory << " in " << data.load_seconds << " s; " << split.train.classes()
                << " training and " << split.test.classes() << " test classes\n";
    few_shot::Progress progress;
    if (!config.quiet)
      progress = [](const std::string& what, long done, long total, double loss, double seconds) {
        std::fprintf(stderr, "\r%-10s %7ld/%ld  loss %.4f  %6.1f s  ETA %6.0f s   ", what.c_str(), done, total, loss,
                     seconds, done > 0 ? seconds / static_cast<double>(done) * static_cast<double>(total - done) : 0.0);
      };
    std::vector<few_shot::Run> runs;
    for (int k = 0; k < config.seeds; ++k) {
      runs.push_back(few_shot::run_seed(config, split, config.seed + static_cast<std::uint64_t>(k), progress));
      const few_shot::Run& r = runs.back();
      if (!config.quiet) std::cerr << "\n";
      std::printf("seed %llu: %s %s after %d steps; meta-training %.1f s (%.2f ms/iteration), evaluation %.1f s\n",
                  static_cast<unsigned long long>(r.seed), examples::algorithm_label(config.algorithm),
                  few_shot::percent(r.maml.interval).c_str(), config.eval_steps,
                  r.train_seconds, r.ms_per_iteration, r.eval_seconds);
      std::fflush(stdout);
    }
    std::cout << few_shot::table(config, runs);
    if (!config.report.empty())
      examples::write_file("few_shot", config.report, few_shot::to_json(config, data, runs));
    if (!config.plot.empty()) examples::write_file("few_shot", config.plot, few_shot::to_svg(config, runs));
  } catch (const few_shot::DataMissing& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const few_shot::UsageError& e) {
    std::cerr << "few_shot: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
