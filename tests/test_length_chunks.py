"""model.length_chunks: a batch encoded in length-sorted passes gives the same features and gradients
through fewer padded positions."""

import pytest
import torch

from cl.engine.checkpoint import differences

LENGTHS = [3, 28, 5, 17, 9, 2, 26, 4]


def batch_of(stream, lengths=LENGTHS):
    return stream.collate([{"input_ids": list(range(2, 2 + n)), "label": i % 2, "task_id": 0}
                           for i, n in enumerate(lengths)])  # fmt: skip


def encoded(module, batch, chunks):
    """Features, parameter gradients and the padded positions the encoder computed."""
    module.length_chunks, seen = chunks, []
    hook = module.network.backbone.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append(kwargs["input_ids"].numel()), with_kwargs=True
    )
    module.zero_grad()
    features = module.encode(batch)
    features.pow(2).sum().backward()
    hook.remove()
    grads = [p.grad.clone() for p in module.parameters() if p.grad is not None]
    return features.detach(), grads, sum(seen)


@pytest.mark.parametrize("chunks", [2, 3, 8])
def test_chunks_give_the_same_features_and_gradients_through_less_padding(build_synthetic, chunks):
    exp = build_synthetic()
    module = exp.module.eval()  # no dropout: the passes must agree to float rounding
    batch = batch_of(exp.stream)
    one, one_grads, one_positions = encoded(module, batch, 1)
    split, split_grads, split_positions = encoded(module, batch, chunks)
    assert torch.allclose(one, split, atol=1e-5)  # each row's features, in the batch's order
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(one_grads, split_grads))
    assert one_positions == len(LENGTHS) * max(LENGTHS) and split_positions < 0.8 * one_positions


def test_a_merged_batch_is_chunked_within_each_segment(build_synthetic):
    exp = build_synthetic()
    module, stream = exp.module.eval(), exp.stream
    merged = stream.merge(batch_of(stream), batch_of(stream, [30, 3, 6]))
    with torch.no_grad():
        module.length_chunks = 1
        whole = module.encode(merged)
        module.length_chunks = 2
        assert torch.allclose(whole, module.encode(merged), atol=1e-5)


def test_a_bad_chunk_count_is_refused_before_training(build_synthetic):
    for value in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="model.length_chunks must be a positive integer"):
            build_synthetic(f"model.length_chunks={value}")


def test_a_run_saved_before_the_setting_existed_counts_as_one_pass():
    saved = {"model": {"name": "m"}, "seed": 0}
    assert differences(saved, {"model": {"name": "m", "length_chunks": 1}, "seed": 0}) == []
    assert differences(saved, {"model": {"name": "m", "length_chunks": 2}, "seed": 0}) == [
        "model.length_chunks: 1 -> 2"
    ]
