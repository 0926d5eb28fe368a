// libFuzzer target: random shapes and values through the public API. The input describes a
// small network (depth, widths — sometimes zero or negative —, activations, loss), a batch
// (size, values — sometimes NaN, infinite or huge —, labels — sometimes out of range —), θ
// (sometimes of the wrong length), MAML options (sometimes invalid) and which calls to make:
// loss_and_gradient, hessian_vector_product, cached_hessian_vector_product, predict,
// Maml::adapt and Maml::meta_loss_and_gradient. Every call must return or throw
// metalearn::invalid_argument (or checkpoint_error); any other exception escapes and is a
// crash, as is any sanitizer report. A call that throws must leave its outputs unchanged.
#include <metalearn/meta/maml.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

namespace {

// The cached product is the library's (model.hpp, CachedPassKey); this file tests it.
constexpr metalearn::CachedPassKey kPassKey = metalearn::detail::KeyIssuer::cached_pass();

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Matrix;
using metalearn::Vector;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_api: property violated: %s\n", what);
  std::abort();
}

// Reads the fuzz input; zeros once it is exhausted.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  int range(int lo, int hi) { return lo + byte() % (hi - lo + 1); }  // [lo, hi]
  // Mostly ordinary values; sometimes NaN, ±infinity, huge or denormal ones.
  double value() {
    const std::uint8_t kind = byte();
    switch (kind % 16) {
      case 0: return std::numeric_limits<double>::quiet_NaN();
      case 1: return (kind & 16) ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
      case 2: return (kind & 16) ? 1e300 : -3e38;
      case 3: return std::numeric_limits<double>::denorm_min();
      case 4: {
        std::uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits |= std::uint64_t{byte()} << (8 * i);
        double d;
        std::memcpy(&d, &bits, 8);
        return d;
      }
      default: return (static_cast<int>(byte()) - 128) / 32.0;
    }
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

nn::Activation activation(int k) {
  switch (k % 8) {
    case 0: return nn::Identity{};
    case 1: return nn::Relu{};
    case 2: return nn::LeakyRelu{0.1};
    case 3: return nn::Tanh{};
    case 4: return nn::Sigmoid{};
    case 5: return nn::Softplus{};
    case 6: return nn::Elu{0.7};
    default: return nn::Gelu{};
  }
}

template <class S>
Matrix<S> matrix(Input& in, Index rows, Index cols) {
  Matrix<S> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m(i) = static_cast<S>(in.value());
  return m;
}

template <class S>
Vector<S> vector(Input& in, Index n) {
  Vector<S> v(n);
  for (Index i = 0; i < n; ++i) v[i] = static_cast<S>(in.value());
  return v;
}

// Calls f; it must return or throw a metalearn exception, leaving `out` unchanged if it throws
// bad input (invalid_argument) or a numerical failure (numerical_error: an inner loop that
// diverged on the fuzzed values).
template <class F, class Out>
void call(F&& f, const Out& out) {
  const Out before = out;
  const auto unchanged = [&] {
    if (before.size() != out.size() ||
        (out.size() > 0 && std::memcmp(before.data(), out.data(), sizeof(*out.data()) * out.size()) != 0))
      violated("a call that threw changed its output");
  };
  try {
    f();
  } catch (const metalearn::invalid_argument&) {
    unchanged();
  } catch (const metalearn::numerical_error&) {
    unchanged();
  } catch (const metalearn::checkpoint_error&) {
  }
}

template <class S, class Loss>
void exercise(Input& in, const std::vector<Index>& widths, const std::vector<nn::Activation>& acts) {
  using Obj = nn::Objective<nn::Mlp<S>, Loss>;
  using Batch = typename Obj::Batch;
  std::unique_ptr<Obj> obj;
  try {
    obj = std::make_unique<Obj>(nn::Mlp<S>(widths, acts), Loss{});
  } catch (const metalearn::invalid_argument&) {
    return;  // a bad network description was refused
  }
  const Index p = obj->parameter_count();
  auto make_batch = [&](Index n) {
    const Index rows = obj->input_size() + (in.range(0, 7) == 0 ? 1 : 0);
    Batch b;
    b.inputs = matrix<S>(in, rows, n);
    if constexpr (std::is_same_v<typename Obj::Target, metalearn::Labels>) {
      b.targets.resize(n + (in.range(0, 9) == 0 ? 1 : 0));
      for (Index j = 0; j < b.targets.size(); ++j)
        b.targets[j] = in.range(0, 15) == 0 ? in.range(-2, 9) : in.range(0, static_cast<int>(obj->output_size()) - 1);
    } else if constexpr (std::is_same_v<Loss, nn::BinaryCrossEntropyWithLogits>) {
      b.targets = Matrix<S>(obj->output_size(), n);
      for (Index i = 0; i < b.targets.size(); ++i)
        b.targets(i) = in.range(0, 15) == 0 ? static_cast<S>(in.value()) : static_cast<S>(in.range(0, 4) / 4.0);
    } else {
      b.targets = matrix<S>(in, obj->output_size(), n + (in.range(0, 9) == 0 ? 1 : 0));
    }
    return b;
  };
  const Batch batch = make_batch(in.range(0, 5));
  Vector<S> theta = vector<S>(in, p + (in.range(0, 9) == 0 ? in.range(-1, 1) : 0));
  typename Obj::Workspace ws;
  Vector<S> grad = Vector<S>::Constant(p, S(7)), hv = Vector<S>::Constant(p, S(8));
  const Vector<S> v = vector<S>(in, p);

  const int ops = in.range(1, 6);
  for (int k = 0; k < ops; ++k) {
    switch (in.range(0, 5)) {
      case 0: call([&] { obj->loss_and_gradient(theta, batch, grad, ws); }, grad); break;
      case 1: call([&] { obj->hessian_vector_product(theta, batch, v, hv, ws); }, hv); break;
      case 2: call([&] { obj->cached_hessian_vector_product(theta, batch, v, hv, ws, kPassKey); }, hv); break;
      case 3: {
        Matrix<S> out = Matrix<S>::Constant(obj->output_size() + (in.range(0, 7) == 0 ? 1 : 0), batch.inputs.cols(), S(9));
        call([&] { obj->predict(theta, batch.inputs, out, ws); }, out);
        break;
      }
      case 4: {
        metalearn::MamlOptions o;
        o.inner_lr = in.range(0, 9) == 0 ? in.value() : 0.01 * in.range(1, 20);
        o.inner_steps = in.range(-1, 3);
        o.order = static_cast<metalearn::Order>(in.range(0, 2));
        o.threads = in.range(0, 9) == 0 ? in.range(0, 3) : 1;
        if (in.range(0, 3) == 0) o.inner_clip = {in.value(), in.value()};
        if (in.range(0, 5) == 0) o.step_weights.assign(static_cast<std::size_t>(in.range(0, 3)), in.value());
        std::unique_ptr<metalearn::Maml<Obj>> maml;
        try {
          maml = std::make_unique<metalearn::Maml<Obj>>(*obj, o);
        } catch (const metalearn::invalid_argument&) {
          break;
        }
        Vector<S> fast = Vector<S>::Constant(p, S(6));
        call([&] { maml->adapt(theta, batch, fast, in.range(-1, 3)); }, fast);
        std::vector<metalearn::Task<Batch>> tasks(static_cast<std::size_t>(in.range(0, 3)));
        for (auto& t : tasks) {
          t.support = make_batch(in.range(0, 4));
          t.query = make_batch(in.range(0, 4));
        }
        call([&] { maml->meta_loss_and_gradient(theta, tasks, grad); }, grad);
        call([&] { maml->meta_loss(theta, tasks); }, grad);
        break;
      }
      default:
        call([&] { obj->loss(theta, batch, ws); }, grad);
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  const int depth = in.range(0, 3);
  std::vector<Index> widths;
  std::vector<nn::Activation> acts;
  for (int l = 0; l <= depth; ++l) widths.push_back(in.range(0, 31) == 0 ? in.range(-2, 0) : in.range(1, 5));
  for (int l = 0; l < depth + (in.range(0, 15) == 0 ? 1 : 0); ++l) acts.push_back(activation(in.range(0, 7)));
  const bool single = in.byte() & 1;
  switch (in.range(0, 2)) {
    case 0:
      single ? exercise<float, nn::MeanSquaredError>(in, widths, acts) : exercise<double, nn::MeanSquaredError>(in, widths, acts);
      break;
    case 1:
      single ? exercise<float, nn::SoftmaxCrossEntropy>(in, widths, acts)
             : exercise<double, nn::SoftmaxCrossEntropy>(in, widths, acts);
      break;
    default:
      single ? exercise<float, nn::BinaryCrossEntropyWithLogits>(in, widths, acts)
             : exercise<double, nn::BinaryCrossEntropyWithLogits>(in, widths, acts);
  }
  return 0;
}
