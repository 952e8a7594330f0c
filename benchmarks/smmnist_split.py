"""Write the fixed-seed SMMNIST test splits of the prediction protocols (videodiff/assets/protocols/*.json).

    python benchmarks/smmnist_split.py

smmnist_test: 256 clips of 20 frames (enough for 5 -> 10 and 10 -> 10), seed 1234 (MCVD seeds its runs with 1234);
smmnist_floor: 256 other clips of the same test digits (seed 4321), the real-vs-real FVD floor. Rerunning it
rewrites the same files (same digests) unless the generator changed.
"""
from videodiff.evaluation.protocols import SPLITS_DIR, write_split

OPTIONS = {"num_frames": 20, "image_size": 64, "num_digits": 2, "digit_size": 32, "max_speed": 4, "stochastic": True}

if __name__ == "__main__":
    SPLITS_DIR.mkdir(parents=True, exist_ok=True)
    for name, seed in (("smmnist_test", 1234), ("smmnist_floor", 4321)):
        rec = write_split(SPLITS_DIR / f"{name}.json", OPTIONS, seed, 256)
        print(f"{name}: seed {seed}, {len(rec['indices'])} clips, sha256 {rec['sha256_trajectories'][:16]}...")
