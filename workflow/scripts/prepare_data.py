"""Check that a dataset loads (both splits) and record its size; a dataset with a `fixture`
entry (CI configs) gets a tiny generated tree at its root first.

    python workflow/scripts/prepare_data.py --dataset-json '{"name": "fashion_mnist", "root": "..."}' --out d.json
"""
from __future__ import annotations

import json
from pathlib import Path

import jobkit
from thinet.checkpoint import atomic_write_json
from thinet.data import make_fixture
from thinet.data.base import FIXTURE_MARKER


def main() -> None:
    parser = jobkit.job_parser(__doc__)
    parser.add_argument("--dataset-json", required=True, help="the config's datasets.<name> entry, plus 'name'")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    jobkit.start_job(args)
    ds = json.loads(args.dataset_json)
    fixture = ds.get("fixture")
    if fixture is not None and not (Path(ds["root"]) / FIXTURE_MARKER).exists():
        jobkit.log.info("writing a %s fixture at %s (%s)", ds["name"], ds["root"], fixture)
        make_fixture(ds["name"], ds["root"], **fixture)
    if not Path(ds["root"]).exists():
        raise FileNotFoundError(f"config key 'datasets.{ds['name']}.root': {ds['root']!r} does not exist")
    spec = {"dataset": ds}
    summary = {"name": ds["name"], "root": str(Path(ds["root"]).resolve()), "fixture": fixture is not None}
    for split in ("train", "val"):
        data = jobkit.dataset(spec, split)
        summary[split] = {"images": len(data), "classes": data.num_classes, "in_channels": data.in_channels,
                          "image_size": data.image_size}
    jobkit.log.info("dataset %s: %s", ds["name"], summary)
    atomic_write_json(summary, args.out)


if __name__ == "__main__":
    main()
