// Adaptation inside a control loop: GrBAL (Nagabandi, Clavera et al. 2019) on a pendulum and a
// cart-pole whose physics change, beside the same network without meta-learning. Run with --help.
#include "adaptive_control.hpp"

#include <iostream>

int main(int argc, char** argv) {
  control::Config config;
  try {
    if (!control::parse(std::vector<std::string>(argv + 1, argv + argc), config)) {
      std::cout << control::usage();
      return 0;
    }
  } catch (const examples::UsageError& e) {
    std::cerr << "adaptive_control: " << e.what() << "\n(run adaptive_control --help for the flags)\n";
    return 2;
  }
  try {
    const auto log = [&](const std::string& line) {
      if (!config.quiet) std::cerr << line << std::endl;
    };
    std::cout << "settings: " << config.seeds << " seed(s) from " << config.seed << "; data: " << config.trajectories
              << " random-policy trajectories of " << config.trajectory_length << " steps (each action held "
              << config.hold << " steps), then " << config.rounds << " MPC collection round(s) of "
              << config.round_episodes << " episodes per method; training physics mass, length in ["
              << control::kTrainPhysics.mass_lo << ", " << control::kTrainPhysics.mass_hi << "], motor gain in ["
              << control::kTrainPhysics.gain_lo << ", " << control::kTrainPhysics.gain_hi
              << "] of either sign; held-out physics: the same mass and length, motor gain in [" << control::kHeldOutPhysics.gain_lo
              << ", " << control::kHeldOutPhysics.gain_hi << ") of either sign; GrBAL: MAML order 2, " << config.inner_steps
              << " inner SGD step(s) of alpha " << config.inner_lr << " on M = " << config.window
              << " transitions, loss on the next K = " << config.query << ", meta-batch " << config.meta_batch
              << ", " << config.iterations << " meta-iterations, Adam " << config.meta_lr
              << "; MB: the same network, Adam on batches of " << config.meta_batch * (config.window + config.query)
              << " transitions, as many steps; MB+DE: MB adapted online as GrBAL; control: "
              << (config.planner == "cem" ? "CEM" : "random shooting") << ", " << config.candidates
              << " candidates x horizon "
              << (config.horizon > 0 ? std::to_string(config.horizon) : "20 (pendulum) / 10 (cart-pole)") << ", " << config.episodes
              << " held-out episodes per method and seed (the same for every method)\n";
    std::vector<control::SystemResult> results;
    if (config.system != "cartpole") results.push_back(control::run_system<control::Pendulum>(config, log));
    if (config.system != "pendulum") results.push_back(control::run_system<control::CartPole>(config, log));
    std::cout << control::table(config, results);
    if (!config.report.empty()) examples::write_file("adaptive_control", config.report, control::to_json(config, results));
    if (!config.plot.empty()) examples::write_file("adaptive_control", config.plot, control::to_svg(results));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "adaptive_control: " << e.what() << "\n";
    return 1;
  }
}
