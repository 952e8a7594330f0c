"""Choices of data options that the config checks and the datasets use (a leaf: imports nothing)."""

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".gif")  # data.extensions (video folders, shards)
DIRECTION_MODES = ("any", "compass")  # data.directions (Moving MNIST)
START_MODES = ("uniform", "behind")  # data.start (Moving MNIST)
