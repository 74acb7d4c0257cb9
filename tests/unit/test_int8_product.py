"""e5's int8 products computed in float32 (a CPU without VNNI) against torch's own int8
product: the same numbers, so the thresholds chosen on one machine hold on another."""

import pytest
import torch
import torch.nn.functional as F

from rasa_gpt_components.models.e5_engine import activation_qparams, int8_product, pack_int8, quantize_rows

pytestmark = pytest.mark.skipif(not {"x86", "fbgemm"} & set(torch.backends.quantized.supported_engines),
                                reason="torch has no x86 quantised engine here")


def _weights(rows: int, columns: int, seed: int) -> torch.Tensor:
    weight = torch.randn(rows, columns, generator=torch.Generator().manual_seed(seed)) * 0.05
    # every other input column zero: no two neighbouring products, so torch's product does
    # not saturate at 16 bits on a CPU without VNNI either and the two must agree exactly
    weight[:, 1::2] = 0.0
    return weight


@pytest.mark.parametrize("low, high", [(-3.0, 3.0), (-0.2, 7.5), (-9.0, 0.4), (0.5, 4.0), (-6.0, -1.0)])
def test_the_float32_int8_product_is_torchs(low, high):
    generator = torch.Generator().manual_seed(1)
    x = low + (high - low) * torch.rand(2, 13, 64, generator=generator)
    weight, bias = _weights(96, 64, seed=2), torch.randn(96, generator=generator) * 0.1
    rows = quantize_rows(weight)

    theirs = torch.ops.quantized.linear_dynamic(x, pack_int8(weight, bias), False)
    ours = int8_product(x, rows.int_repr().float(), rows.q_per_channel_scales().float(), bias)

    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5 * float(theirs.abs().max()))
    # and it is not simply the float32 product
    assert float((F.linear(x, weight, bias) - theirs).abs().max()) > 100 * float((ours - theirs).abs().max())


def test_activation_quantisation_follows_atens_rules():
    scale, zero = activation_qparams(-1.0, 3.0)
    assert scale == pytest.approx(4.0 / 255) and zero == round(1.0 / scale)
    assert activation_qparams(0.5, 2.0)[1] == 0  # the range always holds 0
    assert activation_qparams(-2.0, -0.5)[1] == 255
    assert activation_qparams(0.0, 0.0) == (pytest.approx(0.1), 0)  # nothing to scale: ATen's 0.1
