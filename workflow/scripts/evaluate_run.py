"""Evaluate one run's model: top-1/top-5/loss on the evaluation split (or `data.final_eval_images`
of it), params, FLOPs and forward/backward time; log them, and the model itself, into the MLflow
run that produced the model; write the metrics row (phase `base` for the unpruned model, else
`final`) and a sidecar naming the MLflow run.

    python workflow/scripts/evaluate_run.py --spec results/default/specs/vgg_criteria-original.json \
        --model results/default/base/base-vgg/model.pt --source-run results/default/base/base-vgg/run.json \
        --out results/default/eval/vgg_criteria-original.csv
"""
from __future__ import annotations

from pathlib import Path

import jobkit
from thinet.counting import count_flops, count_params
from thinet.evaluation import evaluate, time_forward_backward
from thinet.models import input_size_of
from thinet.tracking import Tracker, read_sidecar, write_sidecar


def main() -> None:
    parser = jobkit.job_parser(__doc__)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--source-run", required=True, help="run.json beside the model (its MLflow run)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    jobkit.start_job(args)
    spec = jobkit.load_spec(args.spec)
    run = spec["run"]
    device = jobkit.resolve_device(spec["device"])
    model = jobkit.load_model(args.model).to(device)
    size = input_size_of(model)
    result = evaluate(model, jobkit.eval_loader(spec, spec["data"]["final_eval_images"]), device=device)
    timing = time_forward_backward(model, size, batch_size=spec["data"]["timing_batch_size"], device=device)
    phase = "base" if run["kind"] == "original" else "final"
    row = {**jobkit.base_row(spec), "step": -1, "layer": "", "phase": phase, "top1": result["top1"],
           "top5": result["top5"], "loss": result["loss"], "eval_images": result["images"],
           "params": count_params(model), "flops": count_flops(model, size), **timing,
           "device": jobkit.device_label(device)}
    jobkit.log.info("%s (%s): %s", run["id"], phase, row)

    tracker = Tracker.open(spec["mlflow"]["experiment"], enabled=spec["mlflow"]["enabled"])
    run_id = read_sidecar(args.source_run) if tracker.enabled else ""
    if run_id:
        tracker.start_run(run["id"], run_id=run_id)
        tracker.log_metrics(run_id, {f"{phase}_{k}": row[k] for k in
                                     ("top1", "top5", "loss", "params", "flops", "forward_ms", "backward_ms")})
        tracker.set_tags(run_id, {f"snakemake.eval.{run['id']}": str(Path(args.out).resolve()),
                                  "thinet.variant": run["variant"]})
        if spec["mlflow"]["log_model"]:
            tracker.log_model(run_id, model.cpu().eval(), jobkit.example_input(model).numpy())
        tracker.end_run(run_id)
    row["mlflow_run_id"] = run_id
    jobkit.write_rows([row], args.out)
    if run_id:
        tracker.log_artifact(run_id, args.out, "metrics")
    write_sidecar(Path(args.out).with_suffix(".json"), run_id, run=run["id"], output=str(args.out), row=row)


if __name__ == "__main__":
    main()
