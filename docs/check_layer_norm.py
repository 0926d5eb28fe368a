# Checks the layer-norm derivation (docs/derivations.md, "Layer normalisation") against PyTorch autograd in double:
# one layer Z = W A + b 1ᵀ, Y = γ ⊙ LN(Z) + β, A' = relu or tanh(Y), then a dense head and softmax cross-entropy.
# Run: /usr/bin/python3 docs/check_layer_norm.py  (needs python3-torch or pip torch; not part of the build)
import torch
torch.set_default_dtype(torch.float64)
g = torch.Generator().manual_seed(5)
def run(n_in, n_h, n_out, n, act, eps):
    X = torch.randn(n_in, n, generator=g); t = torch.randint(0, n_out, (n,), generator=g)
    shapes = [(n_h, n_in), (n_h,), (n_h,), (n_h,), (n_out, n_h), (n_out,)]   # W, b, γ, β, W2, b2
    sizes = [int(torch.tensor(s).prod()) for s in shapes]
    def unpack(th):
        out, o = [], 0
        for s, k in zip(shapes, sizes): out.append(th[o:o+k].reshape(s)); o += k
        return out
    P = sum(sizes)
    theta = torch.randn(P, generator=g) * 0.5; v = torch.randn(P, generator=g)
    f = torch.relu if act == 'relu' else torch.tanh
    def fp(y): return (y > 0).double() if act == 'relu' else 1 - torch.tanh(y)**2
    def fpp(y): return torch.zeros_like(y) if act == 'relu' else -2*torch.tanh(y)*(1-torch.tanh(y)**2)
    def loss(th):
        W, b, gam, bet, W2, b2 = unpack(th)
        Z = W @ X + b[:, None]
        mu = Z.mean(0, keepdim=True); C = Z - mu; s = torch.sqrt((C**2).mean(0, keepdim=True) + eps)
        Y = gam[:, None] * C / s + bet[:, None]
        O = W2 @ f(Y) + b2[:, None]
        return torch.nn.functional.cross_entropy(O.T, t)
    th = theta.clone().requires_grad_(True)
    L = loss(th); gr, = torch.autograd.grad(L, th, create_graph=True)
    hv_ref, = torch.autograd.grad(gr @ v, th)
    # --- the hand-written passes (the formulas of docs/derivations.md) ---
    W, b, gam, bet, W2, b2 = unpack(theta); V, c, Rg, Rb, V2, c2 = unpack(v)
    m = lambda M: M.mean(0, keepdim=True)   # mean over the features of each column
    Z = W @ X + b[:, None]; C = Z - m(Z); s = torch.sqrt(m(C**2) + eps); Xh = C / s
    Y = gam[:, None] * Xh + bet[:, None]; A = f(Y); O = W2 @ A + b2[:, None]
    p = torch.softmax(O, 0); T = torch.nn.functional.one_hot(t, n_out).T.double()
    GO = (p - T) / n
    J = lambda H: (H - m(H) - Xh * m(H * Xh)) / s         # J h = (h − mean h − x̂ mean(h⊙x̂)) / σ
    GA = W2.T @ GO; GY = GA * fp(Y); GXh = gam[:, None] * GY; dZ = J(GXh)
    grad = torch.cat([(dZ @ X.T).reshape(-1), dZ.sum(1), (GY * Xh).sum(1), GY.sum(1), (GO @ A.T).reshape(-1), GO.sum(1)])
    # R-forward
    RZ = V @ X + c[:, None]; RXh = J(RZ)
    RY = Rg[:, None] * Xh + gam[:, None] * RXh + Rb[:, None]; RA = fp(Y) * RY
    RO = W2 @ RA + V2 @ A + c2[:, None]
    RGO = (p * RO - p * (p * RO).sum(0, keepdim=True)) / n
    # R-backward
    RGA = W2.T @ RGO + V2.T @ GO
    RGY = RGA * fp(Y) + GA * fpp(Y) * RY
    RGXh = Rg[:, None] * GY + gam[:, None] * RGY
    RJ = -(m(Xh * RZ) * J(GXh) + RXh * m(GXh * Xh) + Xh * m(GXh * RXh)) / s   # R{J} h at h = γ⊙G_Y
    RdZ = RJ + J(RGXh)
    hv = torch.cat([(RdZ @ X.T).reshape(-1), RdZ.sum(1), (RGY * Xh + GY * RXh).sum(1), RGY.sum(1),
                    (RGO @ A.T + GO @ RA.T).reshape(-1), RGO.sum(1)])
    eg = ((grad - gr.detach()).abs().max() / gr.abs().max()).item()
    eh = ((hv - hv_ref).abs().max() / hv_ref.abs().max()).item()
    return eg, eh
worst = [0, 0]
for trial in range(20):
    n_in, n_h, n_out, n = [int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((2, 9), (2, 12), (2, 6), (1, 7))]
    for act in ('relu', 'tanh'):
        for eps in (0.0, 1e-5):
            eg, eh = run(n_in, n_h, n_out, n, act, eps)
            worst = [max(worst[0], eg), max(worst[1], eh)]
print('worst relative error over 80 random cases: gradient %.2e, Hessian-vector product %.2e' % tuple(worst))
