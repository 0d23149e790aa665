"""#Param/#FLOPs of the paper's eight architectures beside Tables 1 and 3 (`thinet arch-table`), data-free.

    python workflow/scripts/arch_table.py --out results/default/arch_table.csv
"""
from thinet.experiment import FORMATS, arch_table, job_args
from thinet.runtime import write_text_atomic

if __name__ == "__main__":
    args = job_args(__doc__, "--out")
    write_text_atomic(args.out, FORMATS["csv"](arch_table()))
