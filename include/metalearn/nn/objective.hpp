#pragma once
/// @file
/// @brief A network and a loss: a differentiable model in the sense of metalearn/model.hpp.

#include <metalearn/core/batch.hpp>
#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/model.hpp>
#include <metalearn/nn/bias_replacement.hpp>
#include <metalearn/nn/init.hpp>
#include <metalearn/nn/loss.hpp>

#include <functional>
#include <string>
#include <vector>
#include <utility>

namespace metalearn::nn {

/// L(θ; batch) = loss(network(θ, inputs), targets), with the exact gradient (backprop) and the
/// exact Hessian-vector product (Pearlmutter's R-operator), all written by hand.
///
/// Every member checks its arguments before writing anything; on bad input it throws
/// `metalearn::invalid_argument` and leaves its outputs untouched. The workspace grows on
/// the first call with a larger batch and is then reused without allocating.
/// @tparam Net  `nn::Mlp<...>` (or any type with the same passes)
/// @tparam Loss `MeanSquaredError`, `SoftmaxCrossEntropy` or `BinaryCrossEntropyWithLogits`
template <class Net, class Loss>
class Objective {
 public:
  using Scalar = typename Net::Scalar;                          ///< float or double
  using Network = Net;                                          ///< the network type
  using LossFunction = Loss;                                    ///< the loss type
  using Target = typename Loss::template target_type<Scalar>;  ///< targets of a batch
  using Batch = metalearn::Batch<Matrix<Scalar>, Target>;      ///< inputs (features × n) and targets
  using Workspace = typename Net::Workspace;                    ///< scratch memory, one per thread

  /// @param net   the network
  /// @param loss  the loss on its outputs
  /// @param init  how `initialize` draws the weights (biases are zero)
  explicit Objective(Net net, Loss loss = Loss{}, Initializer init = GlorotUniform{})
      : net_(std::move(net)), loss_(std::move(loss)), init_(init) {
    loss_.check_outputs("nn::Objective", net_.output_size());
    detail::check_initializer("nn::Objective", init_);
  }

  /// Length of θ.
  Index parameter_count() const { return net_.parameter_count(); }
  /// Number of inputs (rows of a batch's inputs).
  Index input_size() const { return net_.input_size(); }
  /// Number of outputs (rows of `predict`'s result).
  Index output_size() const { return net_.output_size(); }
  /// The network.
  const Net& network() const { return net_; }
  /// The loss.
  const Loss& loss_function() const { return loss_; }
  /// The initialisation scheme.
  const Initializer& initializer() const { return init_; }
  /// "1-40(relu)-40(relu)-1(identity) mse": the model's shape, for logs and checkpoints.
  std::string describe() const { return net_.describe() + " " + Loss::name; }

  /// θ's groups: each layer's W ("layer l W") and b ("layer l b"), then for a normalised
  /// layer its gain ("layer l gain") and shift ("layer l shift"), in θ's order.
  std::vector<ParameterGroup> parameter_groups() const {
    std::vector<ParameterGroup> groups;
    for (Index l = 0; l < net_.layer_count(); ++l) {
      const Index off = net_.layer_offset(l), out = net_.layer_output_size(l), in = net_.layer_input_size(l);
      const std::string layer = "layer " + std::to_string(l + 1);
      groups.push_back({layer + " W", off, out * in});
      groups.push_back({layer + " b", off + out * in, out});
      if (net_.layer_normalized(l)) {
        groups.push_back({layer + " gain", off + out * (in + 1), out});
        groups.push_back({layer + " shift", off + out * (in + 2), out});
      }
    }
    return groups;
  }

  /// Draws θ with the objective's initialisation scheme.
  void initialize(VectorRef<Scalar> theta, Rng& rng) const { net_.initialize(theta, rng, init_); }

  /// L(θ; batch).
  Scalar loss(ConstVectorRef<Scalar> theta, const Batch& batch, Workspace& ws) const {
    check_batch("nn::Objective::loss", theta, batch);
    const auto y = net_.forward(theta, batch.inputs, ws);
    return loss_.template value<Scalar>(y, batch.targets);
  }

  /// L(θ; batch); assigns ∇_θ L to grad.
  Scalar loss_and_gradient(ConstVectorRef<Scalar> theta, const Batch& batch, VectorRef<Scalar> grad,
                           Workspace& ws) const {
    return gradient_pass(theta, batch, grad, ws, true);
  }

  /// The same for a θ that one of the library's algorithms has checked (model.hpp,
  /// FiniteThetaKey): skips the O(P) finiteness check of θ; checks everything else.
  Scalar loss_and_gradient(ConstVectorRef<Scalar> theta, const Batch& batch, VectorRef<Scalar> grad, Workspace& ws,
                           FiniteThetaKey) const {
    return gradient_pass(theta, batch, grad, ws, false);
  }

  /// Assigns the exact Hessian-vector product ∇²_θ L(θ; batch) · v to hv.
  void hessian_vector_product(ConstVectorRef<Scalar> theta, const Batch& batch, ConstVectorRef<Scalar> v,
                              VectorRef<Scalar> hv, Workspace& ws) const {
    constexpr const char* where = "nn::Objective::hessian_vector_product";
    check_batch(where, theta, batch);
    metalearn::detail::check_size(where, "v", v.size(), parameter_count());
    metalearn::detail::check_size(where, "hv", hv.size(), parameter_count());
    check_no_alias(where, "hv", hv.data(), theta.data());
    check_no_alias(where, "hv", hv.data(), v.data());
    const Index n = batch.size();
    net_.forward_r(theta, v, batch.inputs, ws);
    const auto y = ws.outputs(n);
    loss_.template value_and_gradient<Scalar>(y, batch.targets, ws.output_gradient(n));
    loss_.template hessian_vector_product<Scalar>(y, batch.targets, ws.output_directions(n),
                                                  ws.output_gradient_directions(n));
    net_.backward_r(theta, v, batch.inputs, ws, hv);
  }

  /// Assigns ∇²_θ L(θ; batch) · v to hv, reusing the gradient pass that the last
  /// `loss_and_gradient(θ, batch, ·, ws)` left in `ws` (same θ and batch objects, unmodified
  /// since): it skips the forward and backward passes, and the gradient pass stays usable, so
  /// any number of products may follow one gradient. Throws if ws holds no such pass.
  /// Only the library's algorithms hold the key (model.hpp, CachedPassKey): a caller cannot know
  /// that θ is unchanged since the pass, and in-place updates keep its address.
  void cached_hessian_vector_product(ConstVectorRef<Scalar> theta, const Batch& batch, ConstVectorRef<Scalar> v,
                                     VectorRef<Scalar> hv, Workspace& ws, CachedPassKey) const {
    constexpr const char* where = "nn::Objective::cached_hessian_vector_product";
    metalearn::detail::check_size(where, "theta", theta.size(), parameter_count());
    metalearn::detail::check_size(where, "v", v.size(), parameter_count());
    metalearn::detail::check_size(where, "hv", hv.size(), parameter_count());
    check_no_alias(where, "hv", hv.data(), theta.data());
    check_no_alias(where, "hv", hv.data(), v.data());
    const Index n = batch.size();
    net_.forward_r_cached(theta, v, batch.inputs, ws);
    loss_.template hessian_vector_product<Scalar>(ws.outputs(n), batch.targets, ws.output_directions(n),
                                                  ws.output_gradient_directions(n));
    net_.backward_r_cached(theta, v, batch.inputs, ws, hv);
  }

  /// The layer whose bias b starts at θ's entry `offset`, or −1 (for adaptors that feed inputs
  /// through a bias: nn::Context).
  Index bias_layer(Index offset) const {
    for (Index l = 0; l < net_.layer_count(); ++l)
      if (net_.layer_offset(l) + net_.layer_output_size(l) * net_.layer_input_size(l) == offset) return l;
    return -1;
  }
  /// True when the bias-direction product below applies: no layer is normalised.
  bool supports_bias_directions() const {
    for (Index l = 0; l < net_.layer_count(); ++l)
      if (net_.layer_normalized(l)) return false;
    return true;
  }

  /// L(θ; batch) with layer `b.layer`'s bias read from `b.values` instead of θ (θ's entries
  /// there are checked finite, not read); assigns ∇_θ L to grad (its bias entries: ∂L/∂b at
  /// b.values). Throws `invalid_argument` for a layer out of range or a non-finite bias.
  Scalar loss_and_gradient(ConstVectorRef<Scalar> theta, const Batch& batch, VectorRef<Scalar> grad, Workspace& ws,
                           BiasReplacement<Scalar> b) const {
    const BiasScope scope(*this, ws, b, "nn::Objective::loss_and_gradient");
    return gradient_pass(theta, batch, grad, ws, true);
  }
  /// The same for a θ that one of the library's algorithms has checked (FiniteThetaKey): θ's
  /// entries are not checked again, the replacing bias is.
  Scalar loss_and_gradient(ConstVectorRef<Scalar> theta, const Batch& batch, VectorRef<Scalar> grad, Workspace& ws,
                           BiasReplacement<Scalar> b, FiniteThetaKey) const {
    const BiasScope scope(*this, ws, b, "nn::Objective::loss_and_gradient");
    return gradient_pass(theta, batch, grad, ws, false);
  }

  /// The cached product ∇²_θ L · v for a direction v that is zero but for layer `c.layer`'s
  /// bias part, `c.values`, after a gradient pass with a replaced bias (same θ and batch
  /// objects): the R-passes skip every product with V. Needs `supports_bias_directions()`.
  void cached_hessian_vector_product(ConstVectorRef<Scalar> theta, const Batch& batch, BiasReplacement<Scalar> c,
                                     VectorRef<Scalar> hv, Workspace& ws, CachedPassKey) const {
    constexpr const char* where = "nn::Objective::cached_hessian_vector_product";
    if (!supports_bias_directions())
      metalearn::detail::fail(where, "a bias direction needs a network without normalised layers");
    metalearn::detail::check_size(where, "theta", theta.size(), parameter_count());
    metalearn::detail::check_size(where, "hv", hv.size(), parameter_count());
    check_no_alias(where, "hv", hv.data(), theta.data());
    const BiasScope scope(*this, ws, c, where, true);
    const Index n = batch.size();
    net_.forward_r_cached(theta, theta, batch.inputs, ws);  // (v is not read: the direction is c)
    loss_.template hessian_vector_product<Scalar>(ws.outputs(n), batch.targets, ws.output_directions(n),
                                                  ws.output_gradient_directions(n));
    net_.backward_r_cached(theta, theta, batch.inputs, ws, hv);
  }

  /// True when θ can be split at `offset` into frozen layers and adapted ones: `offset` is the
  /// start of a layer's W other than the first (model.hpp, frozen-prefix passes).
  bool supports_frozen_prefix(Index offset) const { return offset > 0 && net_.layer_at(offset) > 0; }

  /// L(θ; batch), with ∇_θ L assigned from `prefix.offset()` on (the frozen entries before it
  /// are left as they are): the backward pass stops at the first adapted layer, and with
  /// `prefix.reuse()` the forward pass starts there, on the frozen layers' activations of the
  /// workspace's last pass on this batch (model.hpp, FrozenPrefix: the library's algorithms
  /// promise that their weights are unchanged, and that θ is finite).
  Scalar loss_and_gradient(ConstVectorRef<Scalar> theta, const Batch& batch, VectorRef<Scalar> grad, Workspace& ws,
                           FrozenPrefix prefix) const {
    constexpr const char* where = "nn::Objective::loss_and_gradient";
    const Index first = frozen_layer(where, prefix);
    check_batch(where, theta, batch, false);
    metalearn::detail::check_size(where, "grad", grad.size(), parameter_count());
    check_no_alias(where, "grad", grad.data(), theta.data());
    const Index n = batch.size();
    const auto y = net_.forward_from(theta, batch.inputs, ws, prefix.reuse() ? first : 0);
    const Scalar value = loss_.template value_and_gradient<Scalar>(y, batch.targets, ws.output_gradient(n));
    net_.backward_to(theta, batch.inputs, ws, grad, first);
    return value;
  }

  /// The cached Hessian-vector product for a v that is zero on the frozen prefix (its entries
  /// there are not read), after the keyed gradient pass with the same prefix: the R-pass starts
  /// at the first adapted layer, and the frozen layers' part of H v (their mixed terms with the
  /// adapted ones) is a plain backward pass of the R-gradient at the boundary
  /// (docs/derivations.md). Assigns all of hv, or with `prefix.defer()` the adapted entries,
  /// adding the boundary's R-gradient to a sum in ws for `deferred_frozen_product`.
  void cached_hessian_vector_product(ConstVectorRef<Scalar> theta, const Batch& batch, ConstVectorRef<Scalar> v,
                                     VectorRef<Scalar> hv, Workspace& ws, CachedPassKey, FrozenPrefix prefix) const {
    constexpr const char* where = "nn::Objective::cached_hessian_vector_product";
    const Index first = frozen_layer(where, prefix);
    metalearn::detail::check_size(where, "theta", theta.size(), parameter_count());
    metalearn::detail::check_size(where, "v", v.size(), parameter_count());
    metalearn::detail::check_size(where, "hv", hv.size(), parameter_count());
    check_no_alias(where, "hv", hv.data(), theta.data());
    check_no_alias(where, "hv", hv.data(), v.data());
    const Index n = batch.size();
    net_.forward_r_cached(theta, v, batch.inputs, ws, first);
    loss_.template hessian_vector_product<Scalar>(ws.outputs(n), batch.targets, ws.output_directions(n),
                                                  ws.output_gradient_directions(n));
    net_.backward_r_cached(theta, v, batch.inputs, ws, hv, first, prefix.defer());
  }

  /// The frozen layers' part of the products deferred (`prefix.defer()`) since the last call, on
  /// this batch at θ's frozen weights: one backward pass of the boundary's summed R-gradient,
  /// assigned to out[0, prefix.offset()) (the rest of out is left as it is).
  void deferred_frozen_product(ConstVectorRef<Scalar> theta, const Batch& batch, VectorRef<Scalar> out, Workspace& ws,
                               FrozenPrefix prefix) const {
    constexpr const char* where = "nn::Objective::deferred_frozen_product";
    const Index first = frozen_layer(where, prefix);
    metalearn::detail::check_size(where, "theta", theta.size(), parameter_count());
    metalearn::detail::check_size(where, "out", out.size(), parameter_count());
    check_no_alias(where, "out", out.data(), theta.data());
    net_.deferred_backward(theta, batch.inputs, ws, out, first);
  }

  /// Assigns the network outputs for `inputs` (features × n) to `outputs` (outputs × n).
  void predict(ConstVectorRef<Scalar> theta, ConstMatrixRef<Scalar> inputs, MatrixRef<Scalar> outputs,
               Workspace& ws) const {
    constexpr const char* where = "nn::Objective::predict";
    if (outputs.rows() != output_size() || outputs.cols() != inputs.cols())
      metalearn::detail::fail(where, "outputs are ", outputs.rows(), " x ", outputs.cols(), ", expected ", output_size(), " x ",
                   inputs.cols());
    metalearn::detail::check_size(where, "theta", theta.size(), parameter_count());
    metalearn::detail::check_finite(where, "theta", theta);
    metalearn::detail::check_finite(where, "inputs", inputs);
    outputs = net_.forward(theta, inputs, ws);
  }

 private:
  Scalar gradient_pass(ConstVectorRef<Scalar> theta, const Batch& batch, VectorRef<Scalar> grad, Workspace& ws,
                       bool check_theta) const {
    constexpr const char* where = "nn::Objective::loss_and_gradient";
    check_batch(where, theta, batch, check_theta);
    metalearn::detail::check_size(where, "grad", grad.size(), parameter_count());
    check_no_alias(where, "grad", grad.data(), theta.data());
    const Index n = batch.size();
    const auto y = net_.forward(theta, batch.inputs, ws);
    const Scalar value = loss_.template value_and_gradient<Scalar>(y, batch.targets, ws.output_gradient(n));
    net_.backward(theta, batch.inputs, ws, grad);
    return value;
  }

  void check_batch(const char* where, const ConstVectorRef<Scalar>& theta, const Batch& batch,
                   bool check_theta = true) const {
    metalearn::detail::check_size(where, "theta", theta.size(), parameter_count());
    if (check_theta) metalearn::detail::check_finite(where, "theta", theta);  // one vectorised pass over θ
    if (batch.size() == 0) metalearn::detail::fail(where, "the batch is empty (0 examples)");
    metalearn::detail::check_size(where, "inputs", batch.inputs.rows(), input_size(), "rows (features)");
    metalearn::detail::check_finite(where, "inputs", batch.inputs);
    loss_.template check_targets<Scalar>(where, output_size(), batch.size(), batch.targets);
  }

  Index frozen_layer(const char* where, const FrozenPrefix& prefix) const {
    if (!supports_frozen_prefix(prefix.offset()))
      metalearn::detail::fail(where, "the frozen prefix must end where a layer other than the first begins, got "
                                     "offset ", prefix.offset());
    return net_.layer_at(prefix.offset());
  }

  static void check_no_alias(const char* where, const char* out, const Scalar* a, const Scalar* b) {
    if (a == b) metalearn::detail::fail(where, out, " must not be the same vector as an input");
  }

  // A bias (or direction) given apart from θ, set in the workspace for one pass.
  class BiasScope {
   public:
    BiasScope(const Objective& o, Workspace& ws, const BiasReplacement<Scalar>& b, const char* where,
              bool direction = false)
        : ws_(ws) {
      if (b.layer < 0 || b.layer >= o.net_.layer_count())
        metalearn::detail::fail(where, "the replaced bias's layer must be in [0, ", o.net_.layer_count(), "), got ",
                                b.layer);
      if (b.values == nullptr) metalearn::detail::fail(where, "the replaced bias has no values");
      const Index size = o.net_.layer_output_size(b.layer);
      if (!metalearn::detail::all_finite(Eigen::Map<const Vector<Scalar>>(b.values, size)))
        metalearn::detail::fail(where, direction ? "the direction's bias" : "the replaced bias", " (layer ", b.layer,
                                ", ", size, " entries) has a non-finite entry");
      ws.bias_layer_ = b.layer;
      (direction ? ws.direction_ : ws.bias_) = b.values;
      ws.direction_only_ = direction;
    }
    ~BiasScope() {
      ws_.bias_layer_ = -1;
      ws_.bias_ = ws_.direction_ = nullptr;
      ws_.direction_only_ = false;
    }
    BiasScope(const BiasScope&) = delete;
    BiasScope& operator=(const BiasScope&) = delete;

   private:
    Workspace& ws_;
  };

  Net net_;
  Loss loss_;
  Initializer init_;
};

}  // namespace metalearn::nn
