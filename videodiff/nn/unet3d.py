"""The 3D U-Net factorized over space and time (paper Sec. 3, Fig. 1).

Input: a noisy video ``z_t`` ``(B, C, F, H, W)``, its log-SNR ``lambda_t`` ``(B,)``, an optional conditioning
vector ``c`` ``(B, cond_dim)`` (or one per frame, ``(B, F, cond_dim)``, so that image frames appended for joint
training keep their own captions) and an optional temporal-attention ``frame_mask``. Output: a tensor of the shape of
``z_t`` (the caller decides whether it is ``eps`` or ``v``; the network knows nothing of diffusion).

K levels; level k has ``base_channels * M_k`` channels (the channel multipliers ``M_1..M_K``) and
``num_res_blocks`` residual blocks of 1x3x3 convolutions; at the resolutions in ``attn_resolutions`` each residual
block is followed by spatial attention and then temporal attention. Between levels, height and width are halved
(down) or doubled (up); the frame count is never changed. The up pass concatenates the activations of the down
pass (concatenation skip connections).

``frame_positions`` (off by default) adds a learned embedding of each frame's absolute index to its conditioning
embedding. The paper orders frames only by relative positions in temporal attention, which makes the network
equivariant to shifts in time wherever the content does not break the symmetry; from nearly pure noise it then
cannot place a digit differently in the first and last frames, so a caption's direction ("moving right") only helps
in a narrow band of noise levels. The shipped text-to-video model uses it (``configs/moving_mnist_text32_dir.yaml``);
docs/results.md ("Directions") reports what it did at CPU scale.

``spatial_positions`` (off by default; not in the paper either) adds the pixel coordinates ``(x, y)`` in [-1, 1],
through a zero-initialised 1x1 convolution, to the first feature map (as CoordConv, Liu et al. 2018). The paper's
network is translation-equivariant up to its zero padding, so from nearly pure noise it can place a digit at a
caption- and frame-dependent position ("moving right": on the left in frame 0) only by way of the borders; with the
coordinates, a FiLM scale that depends on frame and caption turns the x ramp into such a position directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from .attention import SpatialAttention, TemporalAttention
from .blocks import Downsample, ResBlock, Upsample, group_norm
from .embeddings import GuidanceEmbedding, LogSNREmbedding

__all__ = ["UNetConfig", "UNet3D", "set_activation_checkpointing"]


@dataclass
class UNetConfig:
    in_channels: int = 1
    out_channels: int | None = None  # None: same as in_channels
    image_size: int = 64  # the resolution the attention placement refers to (the net runs on any multiple of 2^(K-1))
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 4, 8)  # M_1..M_K
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (8, 16, 32)  # spatial sizes (at image_size input) with attention blocks
    head_dim: int = 64
    dropout: float = 0.1
    cond_dim: int = 0  # size of the conditioning vector c (0: unconditional)
    max_relative_position: int = 32
    # > 0: a learned absolute frame-position embedding (up to this many frames) added to each frame's conditioning
    # embedding. Not in the paper, which orders frames by relative positions only; see ``frame_positions`` in the
    # module docstring for why the shipped text-to-video model uses it. 0 (default): the paper's network.
    frame_positions: int = 0
    # True: the pixel coordinates enter the first feature map through a zero-initialised 1x1 convolution (CoordConv).
    # Not in the paper; see ``spatial_positions`` in the module docstring. False (default): the paper's network.
    spatial_positions: bool = False
    # > 0: every frame's input also holds this many clean context frames (the last given ones) and a "given" flag,
    # concatenated to z_t by the caller (videodiff/context.py; MCVD-style concatenation for a frame-conditional
    # model): the first convolution takes in_channels * (1 + n) + 1 channels. 0 (default): the paper's network.
    context_concat: int = 0
    # True: the network also takes the classifier-free guidance weight w of eq. (5) (``guidance_w``), embedded and
    # added to every frame's conditioning embedding through a zero-initialised layer: the input of a guidance-distilled
    # student (Meng et al. 2023; videodiff/distill, distill.guidance_range). False (default): the paper's network.
    guidance_input: bool = False
    # Deprecated spelling of train.activation_checkpointing (older configs load: ExperimentConfig moves it there). A
    # UNet3D built from a config with it set still checkpoints its blocks (set_activation_checkpointing changes it).
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        self.channel_mults = tuple(self.channel_mults)
        self.attn_resolutions = tuple(self.attn_resolutions)
        if self.context_concat < 0:
            raise ValueError(f"model.context_concat must be >= 0, got {self.context_concat}")
        if self.frame_positions < 0:
            raise ValueError(f"model.frame_positions must be >= 0, got {self.frame_positions}")
        if min(self.in_channels, self.base_channels, self.num_res_blocks, self.head_dim) < 1:
            raise ValueError("model.in_channels, base_channels, num_res_blocks and head_dim must be >= 1")
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ValueError(f"model.channel_mults must be positive integers, got {self.channel_mults}")
        if self.image_size % 2 ** (len(self.channel_mults) - 1):
            raise ValueError(
                f"model.image_size ({self.image_size}) must be divisible by 2^(K-1) = "
                f"{2 ** (len(self.channel_mults) - 1)} for K = {len(self.channel_mults)} levels"
            )
        sizes = [self.image_size // 2**k for k in range(len(self.channel_mults))]
        if self.attn_resolutions and not self.attention_levels():  # () is allowed: no attention, deliberately
            raise ValueError(f"model.attn_resolutions {list(self.attn_resolutions)} matches no level of the U-Net, "
                             f"whose levels have sizes {sizes} (model.image_size {self.image_size}, "
                             f"{len(sizes)} model.channel_mults): the network would have no attention; use sizes "
                             f"from {sizes}, or [] for none")
        for level in self.attention_levels() + [len(self.channel_mults) - 1]:
            ch = self.base_channels * self.channel_mults[level]
            if ch % self.head_dim:
                raise ValueError(f"model.head_dim ({self.head_dim}) must divide the {ch} channels of level {level}")

    def input_channels(self) -> int:
        """Channels of the first convolution: ``in_channels``, plus the concatenated context frames and flag."""
        n = self.context_concat
        return self.in_channels * (1 + n) + (1 if n else 0)

    def attention_levels(self) -> list[int]:
        """Indices of the levels whose resolution (``image_size / 2^k``) is in ``attn_resolutions``."""
        return [k for k in range(len(self.channel_mults)) if self.image_size // 2**k in self.attn_resolutions]


class _Block(nn.Module):
    """A residual block optionally followed by spatial then temporal attention (Sec. 3)."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, cfg: UNetConfig, attention: bool):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, cfg.dropout)
        self.spatial = SpatialAttention(out_ch, cfg.head_dim) if attention else None
        self.temporal = TemporalAttention(out_ch, cfg.head_dim, cfg.max_relative_position) if attention else None

    def forward(self, x: Tensor, emb: Tensor, num_frames: int, frame_mask: Tensor | None) -> Tensor:
        x = self.res(x, emb)
        if self.spatial is not None:
            x = self.spatial(x)
            x = self.temporal(x, num_frames, frame_mask)
        return x


class UNet3D(nn.Module):
    """Space-time factorized 3D U-Net; see the module docstring."""

    # Parameters of optional inputs that start at zero (the network is then the same function as one without them),
    # so a model may add them when it starts from another's weights (train.init_from).
    ZERO_INIT_OPTIONAL = ("frame_pos.weight", "coord_in.weight", "coord_in.bias", "guidance_emb.mlp.0.weight",
                          "guidance_emb.mlp.0.bias", "guidance_emb.mlp.2.weight", "guidance_emb.mlp.2.bias")
    # Input channels a fine-tune may add to the network it starts from (train.init_from): they start at zero weight.
    WIDENED_INPUTS = ("conv_in.weight",)

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        # Activation checkpointing per block (each residual block with its attention, the down/up samplers aside):
        # in training, a block keeps only its input and recomputes its activations in backward.
        self.activation_checkpointing = cfg.gradient_checkpointing
        ch0 = cfg.base_channels
        emb_dim = 4 * ch0
        attn = set(cfg.attention_levels())
        self.logsnr_emb = LogSNREmbedding(ch0, emb_dim)
        self.cond_emb = nn.Linear(cfg.cond_dim, emb_dim) if cfg.cond_dim > 0 else None
        self.frame_pos = nn.Embedding(cfg.frame_positions, emb_dim) if cfg.frame_positions > 0 else None
        self.guidance_emb = GuidanceEmbedding(ch0, emb_dim) if cfg.guidance_input else None  # zero at init
        if self.frame_pos is not None:
            nn.init.zeros_(self.frame_pos.weight)  # starts as the paper's network (and as a model fine-tuned from)
        self.conv_in = nn.Conv2d(cfg.input_channels(), ch0, 3, padding=1)
        self.coord_in = nn.Conv2d(2, ch0, 1) if cfg.spatial_positions else None
        if self.coord_in is not None:
            nn.init.zeros_(self.coord_in.weight)  # starts as the network without it (a fine-tune starts unchanged)
            nn.init.zeros_(self.coord_in.bias)

        num_levels = len(cfg.channel_mults)
        self.down = nn.ModuleList()
        skip_chs, ch = [ch0], ch0
        for level, mult in enumerate(cfg.channel_mults):
            for _ in range(cfg.num_res_blocks):
                self.down.append(_Block(ch, ch0 * mult, emb_dim, cfg, level in attn))
                ch = ch0 * mult
                skip_chs.append(ch)
            if level < num_levels - 1:
                self.down.append(Downsample(ch))
                skip_chs.append(ch)
        self.mid = nn.ModuleList([
            _Block(ch, ch, emb_dim, cfg, attention=True),
            _Block(ch, ch, emb_dim, cfg, attention=False),
        ])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mults))):
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(_Block(ch + skip_chs.pop(), ch0 * mult, emb_dim, cfg, level in attn))
                ch = ch0 * mult
            if level > 0:
                self.up.append(Upsample(ch))
        self.norm_out = group_norm(ch)
        self.conv_out = nn.Conv2d(ch, cfg.out_channels or cfg.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _run(self, block: nn.Module, *args) -> Tensor:
        if self.activation_checkpointing and self.training and torch.is_grad_enabled():
            return grad_checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def forward(
        self, z_t: Tensor, logsnr: Tensor, cond: Tensor | None = None, frame_mask: Tensor | None = None,
        guidance_w: Tensor | float | None = None,
    ) -> Tensor:
        """``z_t`` ``(B, C, F, H, W)``, ``logsnr`` ``(B,)`` or per frame ``(B, F)``, ``cond`` ``(B, cond_dim)`` or per frame
        ``(B, F, cond_dim)``, ``frame_mask`` ``(F, F)`` or ``(B, F, F)`` (True = may attend), ``guidance_w`` ``(B,)``
        or a number: the guidance weight of a ``model.guidance_input`` network (None: 0). Returns
        ``(B, out_channels, F, H, W)``."""
        b, c, f, h, w = z_t.shape
        if h % 2 ** (len(self.cfg.channel_mults) - 1) or w % 2 ** (len(self.cfg.channel_mults) - 1):
            raise ValueError(f"height and width ({h}x{w}) must be divisible by 2^(K-1) for K={len(self.cfg.channel_mults)}")
        if frame_mask is not None and frame_mask.shape[-2:] != (f, f):
            raise ValueError(f"frame_mask must be (F, F) or (B, F, F) with F={f}, got {tuple(frame_mask.shape)}")
        if logsnr.ndim == 2:  # one log-SNR per frame (B, F): given context frames are clean (videodiff/context.py)
            if logsnr.shape != (b, f):
                raise ValueError(f"per-frame logsnr must be (B, F) = ({b}, {f}), got {tuple(logsnr.shape)}")
            emb = self.logsnr_emb(logsnr.reshape(-1)).view(b, f, -1)
        else:
            emb = self.logsnr_emb(logsnr.expand(b))[:, None].expand(b, f, -1)  # (B, F, emb_dim)
        if self.cond_emb is not None:
            if cond is None:
                cond = torch.zeros(b, self.cfg.cond_dim, device=z_t.device)  # the null condition c = 0 (Sec. 2)
            if cond.ndim == 3:  # per-frame conditioning (B, F, cond_dim), e.g. appended image frames (Sec. 4.2)
                if cond.shape[:2] != (b, f):
                    raise ValueError(f"per-frame cond must be (B, F, cond_dim) with B={b}, F={f}, "
                                     f"got {tuple(cond.shape)}")
                emb = emb + self.cond_emb(cond.to(emb.dtype))
            else:
                emb = emb + self.cond_emb(cond.to(emb.dtype))[:, None]
        elif cond is not None:
            raise ValueError("cond was given but the model has cond_dim = 0")
        if self.guidance_emb is not None:  # Meng et al. 2023: w as an input, added like c
            gw = torch.as_tensor(0.0 if guidance_w is None else guidance_w, device=z_t.device).float().expand(b)
            emb = emb + self.guidance_emb(gw).to(emb.dtype)[:, None]
        elif guidance_w is not None:
            raise ValueError("guidance_w was given but the model has no guidance input (model.guidance_input false)")
        emb = emb.reshape(b * f, -1)  # (B*F, emb_dim): one embedding per frame
        if self.frame_pos is not None:
            if f > self.cfg.frame_positions:
                raise ValueError(f"{f} frames but model.frame_positions is {self.cfg.frame_positions}")
            emb = (emb.view(b, f, -1) + self.frame_pos.weight[:f].to(emb.dtype)).reshape(b * f, -1)
        x = z_t.transpose(1, 2).reshape(b * f, c, h, w)  # (B*F, C, H, W): frames folded into the batch
        x = self.conv_in(x)
        if self.coord_in is not None:
            x = x + self.coord_in(pixel_coordinates(h, w, x.device, x.dtype))  # (1, ch0, H, W), broadcast over frames
        skips = [x]
        for block in self.down:
            x = self._run(block, x, emb, f, frame_mask) if isinstance(block, _Block) else block(x)
            skips.append(x)
        for block in self.mid:
            x = self._run(block, x, emb, f, frame_mask)
        for block in self.up:
            if isinstance(block, _Block):
                x = self._run(block, torch.cat([x, skips.pop()], dim=1), emb, f, frame_mask)
            else:
                x = block(x)
        x = self.conv_out(F.silu(self.norm_out(x)))
        return x.reshape(b, f, -1, h, w).transpose(1, 2)  # (B, C_out, F, H, W)


def set_activation_checkpointing(model: nn.Module, on: bool) -> int:
    """Turn per-block activation checkpointing on or off in every :class:`UNet3D` inside ``model`` (the weights and
    the function computed are unchanged); returns how many networks were set."""
    nets = [m for m in model.modules() if isinstance(m, UNet3D)]
    for m in nets:
        m.activation_checkpointing = on
    return len(nets)


def pixel_coordinates(h: int, w: int, device=None, dtype=torch.float32) -> Tensor:
    """``(1, 2, h, w)``: each pixel's ``x`` (column) and ``y`` (row), linearly from -1 to 1 (pixel centres)."""
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy])[None]
