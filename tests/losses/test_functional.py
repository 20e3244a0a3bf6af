"""Each loss against a slow, obvious per-sample loop written from its formula (tolerance 1e-5)."""

import math

import pytest
import torch
import torch.nn.functional as F

from napari_amvlm.losses import functional as Fn

TAU = 0.07


def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def _ref_info_nce(logits, targets):
    n, m = logits.shape
    total = 0.0
    for i in range(n):
        denom = sum(math.exp(logits[i, k]) for k in range(m))
        for j in range(m):
            if targets[i][j]:
                total -= targets[i][j] * math.log(math.exp(logits[i, j]) / denom)
    return total / n


def test_info_nce_identity_matches_loop():
    logits = torch.randn(5, 5, dtype=torch.float64)
    eye = torch.eye(5, dtype=torch.float64).tolist()
    assert Fn.info_nce(logits).item() == pytest.approx(_ref_info_nce(logits, eye), abs=1e-5)


def test_symmetric_info_nce_with_same_text_targets():
    texts = ["a", "b", "a", "c", "b", "a"]
    t = Fn.same_text_targets(texts).double()
    # rows sum to one and identical sentences share the mass
    assert torch.allclose(t.sum(1), torch.ones(6, dtype=torch.float64))
    assert t[0, 2] == pytest.approx(1 / 3) and t[0, 1] == 0
    v, w = _unit(6, 8, seed=1), _unit(6, 8, seed=2)
    logits = v @ w.t() / TAU
    ref_rows = _ref_info_nce(logits, t.tolist())
    tt = t.t() / t.t().sum(1, keepdim=True)
    ref_cols = _ref_info_nce(logits.t(), tt.tolist())
    assert Fn.symmetric_info_nce(logits, t).item() == pytest.approx(0.5 * (ref_rows + ref_cols), abs=1e-5)


def _ref_token_info_nce(q, m, mask):
    b, n, _ = q.shape
    total, count = 0.0, 0
    for i in range(b):
        valid = [p for p in range(n) if mask[i, p]]
        for p in valid:
            num = math.exp(float(q[i, p] @ m[i, p]) / TAU)
            den_f = sum(math.exp(float(q[i, p] @ m[i, k]) / TAU) for k in valid)
            den_b = sum(math.exp(float(m[i, p] @ q[i, k]) / TAU) for k in valid)
            total -= math.log(num / den_f) + math.log(num / den_b)
            count += 1
    return total / (2 * count)


def test_token_info_nce_matches_loop_with_padding():
    q, m = _unit(3, 5, 6, seed=3), _unit(3, 5, 6, seed=4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    got = Fn.token_info_nce(q, m, mask, TAU).item()
    assert got == pytest.approx(_ref_token_info_nce(q, m, mask), abs=1e-5)
    # changing a padded token changes nothing
    q2 = q.clone()
    q2[2, 4] = _unit(6, seed=9)
    assert Fn.token_info_nce(q2, m, mask, TAU).item() == pytest.approx(got, abs=1e-12)


def test_w2_closed_form_and_pairwise():
    g = torch.Generator().manual_seed(5)
    m1, m2 = torch.randn(4, 7, generator=g, dtype=torch.float64), torch.randn(4, 7, generator=g, dtype=torch.float64)
    s1, s2 = torch.rand(4, 7, generator=g, dtype=torch.float64), torch.rand(4, 7, generator=g, dtype=torch.float64)
    w2 = Fn.w2_pairwise(m1, s1, m2, s2)
    assert w2.shape == (4, 4)
    for i in range(4):
        for j in range(4):
            ref = sum((m1[i, k] - m2[j, k]) ** 2 + (s1[i, k] - s2[j, k]) ** 2 for k in range(7))
            assert w2[i, j].item() == pytest.approx(float(ref), abs=1e-5)
    off = w2[~torch.eye(4, dtype=torch.bool)]
    assert not torch.allclose(off, w2.diagonal().repeat(3))  # off-diagonal pairs are real, distinct values
    # identical Gaussians are at distance zero; sigma = exp(logvar / 2), not log sigma
    mu, lv = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    pm, ps = Fn.pool_gaussian(mu[None], lv[None], None)
    assert torch.allclose(ps, torch.exp(0.5 * lv).mean(0, keepdim=True))
    assert Fn.w2_pairwise(pm, ps, pm, ps).item() == pytest.approx(0.0, abs=1e-10)


def test_pdt_scale_range():
    w2 = torch.tensor([[0.0, 1.0], [2.0, 4.0]])
    c = Fn.pdt_scale(w2)
    assert c[0, 0].item() == pytest.approx(1.0)
    assert (c > 0).all() and (c <= 1).all() and c[1, 1] < c[0, 1]


def _ref_icl_fine(g, tok, mask, targets):
    b, n, _ = tok.shape
    total, count = 0.0, 0
    for i in range(b):
        for p in range(n):
            if not mask[i, p]:
                continue
            den = sum(math.exp(float(tok[i, p] @ g[j]) / TAU) for j in range(b))
            for j in range(b):
                if targets[i][j]:
                    total -= targets[i][j] * math.log(math.exp(float(tok[i, p] @ g[j]) / TAU) / den)
            count += 1
    return total / count


def test_icl_fine_matches_loop():
    g, tok = _unit(4, 6, seed=6), _unit(4, 5, 6, seed=7)
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1, 3:] = False
    targets = Fn.same_text_targets(["x", "y", "x", "z"]).double()
    got = Fn.icl_fine(g, tok, mask, TAU, targets).item()
    assert got == pytest.approx(_ref_icl_fine(g, tok, mask, targets.tolist()), abs=1e-5)
    eye = torch.eye(4, dtype=torch.float64)
    assert Fn.icl_fine(g, tok, None, TAU).item() == pytest.approx(
        _ref_icl_fine(g, tok, torch.ones(4, 5, dtype=torch.bool), eye.tolist()), abs=1e-5)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="dimensions"):
        Fn.info_nce(torch.zeros(3))
    with pytest.raises(ValueError, match="do not match"):
        Fn.token_info_nce(torch.zeros(2, 3, 4), torch.zeros(2, 4, 4), None, TAU)
