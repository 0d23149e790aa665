"""#Param/#FLOPs (and, with --timing, f./b. ms) of the paper's eight architectures beside Tables 1 and 3, data-free.

    python workflow/scripts/arch_table.py --out results/default/arch_table.csv [--timing '{"image_size": 224}' --device auto]
"""
import json

from thinet.experiment import job_args, run_arch_table_job

if __name__ == "__main__":
    args = job_args(__doc__, "--out", optional=("--timing", "--device"))
    run_arch_table_job(args.out, json.loads(args.timing) if args.timing else None, args.device or "auto")
