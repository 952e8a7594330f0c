"""Neural networks: the space-time factorized 3D U-Net of paper Sec. 3 and its blocks."""

from .attention import SpatialAttention, TemporalAttention, identity_frame_mask, joint_frame_mask
from .unet3d import UNet3D, UNetConfig, set_activation_checkpointing

__all__ = ["UNet3D", "UNetConfig", "SpatialAttention", "TemporalAttention", "identity_frame_mask", "joint_frame_mask",
           "set_activation_checkpointing"]
