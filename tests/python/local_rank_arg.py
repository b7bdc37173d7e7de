"""What zlaunch gives a script that parses DeepSpeed's --local_rank (this
file names it, so --local-rank-arg auto passes it): prints the value and
checks it is this worker's LOCAL_RANK."""
import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--local_rank", type=int, default=-1, help="local rank passed from distributed launcher")
parser.add_argument("--tag", default="")
args = parser.parse_args()
assert args.local_rank in (-1, int(os.environ["LOCAL_RANK"])), (args.local_rank, os.environ["LOCAL_RANK"])
print(f"LOCAL_RANK_ARG {args.local_rank} tag={args.tag}")
