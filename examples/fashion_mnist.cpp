// Softmax regression and an MLP on Fashion-MNIST: examples/fashion_mnist.hpp has the pieces,
// README section "Classifying images" the results. Exit status: 0 on success, 2 for a bad
// command line or missing data, 1 for any other error (a corrupt data file included).
#include "fashion_mnist.hpp"

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  fashion::Config config;
  try {
    if (!fashion::parse(std::vector<std::string>(argv + 1, argv + argc), config)) {
      std::cout << fashion::usage();
      return 0;
    }
  } catch (const fashion::UsageError& e) {
    std::cerr << "fashion_mnist: " << e.what() << "\n";
    return 2;
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    const fashion::Data data = fashion::load(config);
    const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!config.quiet)
      std::cerr << "loaded " << data.train.size() << " training and " << data.test.size() << " test images from "
                << config.data << " in " << load_seconds << " s\n";
    fashion::Progress progress;
    if (!config.quiet)
      progress = [](const std::string& run, const metalearn::StepProgress& p) {
        if (p.iteration % 100 != 0 && !p.epoch_done()) return;
        std::fprintf(stderr, "\r%-8s epoch %3ld  batch %4ld/%ld  loss %.4f  %8.0f examples/s  ETA %5.1f s   ",
                     run.c_str(), static_cast<long>(p.epoch), static_cast<long>(p.batch),
                     static_cast<long>(p.batches_per_epoch), p.loss, p.examples_per_second, p.eta_seconds);
      };
    const auto runs = fashion::run_all(config, data, progress);
    if (!config.quiet) std::cerr << "\n";
    std::cout << fashion::table(runs);
    if (!config.report.empty())
      examples::write_file("fashion_mnist", config.report, fashion::to_json(config, data, runs));
    if (!config.plot.empty()) examples::write_file("fashion_mnist", config.plot, fashion::to_svg(runs));
  } catch (const fashion::DataMissing& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
