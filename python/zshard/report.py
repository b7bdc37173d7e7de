"""The run report: one HTML page (PNG plots embedded) a person would
rather look at than read, made from a zlaunch --log-dir directory at the
end of the job (node 0's zlaunch runs it) or again by hand:

    zlaunch report LOG_DIR        (or: python3 -m zshard.report LOG_DIR)

It reads rank 0's run log (metrics.jsonl: loss, lr, the step's phases),
zlaunch's GPU samples (gpu_node<N>.csv, every reserved GPU of every node)
and the communication table (comms.json, with comms_logger), and writes
LOG_DIR/report.html and the plots beside it (report_*.png)."""
import base64
import csv
import glob
import html
import io
import json
import os
import statistics
import sys

RUN_LOG = "metrics.jsonl"
COMMS_FILE = "comms.json"
TAG = "Train/Samples/"
IDLE_PERCENT = 10  # a GPU under this mean utilisation is flagged
PHASES = (("forward", "elapsed_time_ms_forward", "#4C72B0"),
          ("backward", "elapsed_time_ms_backward_inner", "#55A868"),
          ("exposed communication", "elapsed_time_ms_exposed_comm", "#C44E52"),
          ("optimizer", "elapsed_time_ms_optimizer", "#8172B2"))


class ReportError(Exception):
    pass


def read_run_log(log_dir):
    """{tag without Train/Samples/: {samples: value}} from the run log."""
    path = os.path.join(log_dir, RUN_LOG)
    if not os.path.exists(path):
        raise ReportError(f"{path}: no run log (was the job started with zlaunch --log-dir and did rank 0 "
                          "reach an optimizer step?)")
    series = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line cut short by a killed job
            tag = event["tag"][len(TAG):] if event["tag"].startswith(TAG) else event["tag"]
            series.setdefault(tag, {})[event["step"]] = event["value"]
    return series


def read_gpu_samples(log_dir):
    """{(host, gpu): {"worker": bool, "t": [...], "util": [...], "mem": [...]}}."""
    gpus = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "gpu_node*.csv"))):
        with open(path, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                try:
                    key = (row["host"], int(row["gpu"]))
                    g = gpus.setdefault(key, {"worker": row["worker"] == "1", "t": [], "util": [], "mem": []})
                    g["t"].append(float(row["time"]))
                    g["util"].append(float(row["utilisation"]))
                    g["mem"].append(float(row["memory_mib"]))
                except (KeyError, ValueError):
                    continue
    return gpus


def read_comms(log_dir):
    path = os.path.join(log_dir, COMMS_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ReportError("matplotlib is not importable; install it (Debian: apt install python3-matplotlib)") \
            from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _by_step(series, tag):
    """(global steps, values) of `tag`, through the samples both share;
    train_loss is indexed (as DeepSpeed does) by the samples before its step."""
    values = series.get(tag, {})
    if tag == "train_loss":
        per_step = _samples_per_step(series)
        pairs = sorted((s // per_step + 1, v) for s, v in values.items())
    else:
        steps = series.get("global_step", {})
        pairs = sorted((steps[s], v) for s, v in values.items() if s in steps)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _samples_per_step(series):
    steps = series.get("global_step", {})
    if not steps:
        return 1
    samples, step = max(steps.items())
    return max(samples // max(step, 1), 1)


def _png(fig, plt):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def plot_training(series, plt):
    fig, loss_axis = plt.subplots(figsize=(9, 3.6))
    steps, loss = _by_step(series, "train_loss")
    if steps:
        loss_axis.plot(steps, loss, color="#4C72B0", label="train loss")
    else:
        loss_axis.text(0.5, 0.5, "no train_loss: the script gave the engine no loss (engine.backward(loss))",
                       ha="center", va="center", transform=loss_axis.transAxes)
    loss_axis.set_xlabel("optimizer step")
    loss_axis.set_ylabel("train loss", color="#4C72B0")
    lr_axis = loss_axis.twinx()
    steps, lr = _by_step(series, "lr")
    lr_axis.plot(steps, lr, color="#DD8452", label="lr")
    lr_axis.set_ylabel("learning rate", color="#DD8452")
    loss_axis.set_title("Loss and learning rate")
    return _png(fig, plt)


def plot_breakdown(series, plt):
    fig, axis = plt.subplots(figsize=(9, 3.6))
    steps, _ = _by_step(series, PHASES[0][1])
    stacks = [_by_step(series, tag)[1] for _, tag, _ in PHASES]
    if steps and all(len(s) == len(steps) for s in stacks):
        axis.stackplot(steps, *stacks, labels=[name for name, _, _ in PHASES], colors=[c for _, _, c in PHASES])
        axis.legend(loc="upper right", fontsize=8)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("ms per optimizer step (rank 0)")
    axis.set_title("Where a step's time goes")
    return _png(fig, plt)


def plot_gpus(gpus, plt):
    fig, (util_axis, mem_axis) = plt.subplots(1, 2, figsize=(11, 3.6))
    for (host, gpu), g in sorted(gpus.items()):
        idle = not g["worker"] or statistics.fmean(g["util"]) < IDLE_PERCENT
        label = f"{host} GPU {gpu}" + (" (IDLE)" if idle else "")
        style = "--" if idle else "-"
        util_axis.plot(g["t"], g["util"], style, label=label)
        mem_axis.plot(g["t"], g["mem"], style, label=label)
    util_axis.set_title("GPU utilisation (%)")
    mem_axis.set_title("GPU memory used (MiB)")
    for axis in (util_axis, mem_axis):
        axis.set_xlabel("seconds since start")
    util_axis.legend(fontsize=7)
    return _png(fig, plt)


def _figure(title, png, name, log_dir):
    with open(os.path.join(log_dir, f"report_{name}.png"), "wb") as f:
        f.write(png)
    data = base64.b64encode(png).decode("ascii")
    return f'<section><h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{data}"></section>'


def _gpu_section(gpus, plt, log_dir):
    if not gpus:
        return ("<section><h2>GPUs</h2><p class=note>No GPU samples: the job ran on CPU workers, or this "
                "node has no NVML (zlaunch samples every reserved GPU through it).</p></section>")
    rows = []
    for (host, gpu), g in sorted(gpus.items()):
        mean = statistics.fmean(g["util"])
        flag = "NO WORKER" if not g["worker"] else ("IDLE" if mean < IDLE_PERCENT else "")
        rows.append(f"<tr class='{'idle' if flag else ''}'><td>{html.escape(host)}</td><td>{gpu}</td>"
                    f"<td>{mean:.0f}%</td><td>{max(g['mem']):.0f}</td><td>{flag}</td></tr>")
    table = ("<table><tr><th>host</th><th>GPU</th><th>mean busy</th><th>peak MiB</th><th></th></tr>"
             + "".join(rows) + "</table>")
    return _figure("GPUs", plot_gpus(gpus, plt), "gpus", log_dir).replace("</section>", table + "</section>")


def _comms_section(comms):
    if comms is None:
        return ("<section><h2>Communication</h2><p class=note>No communication table: turn on "
                "\"comms_logger\": {\"enabled\": true} in the config.</p></section>")
    head = ("<tr><th>op</th><th>bytes</th><th>count</th><th>mean ms</th><th>p50 ms</th><th>p99 ms</th>"
            "<th>algbw GB/s</th><th>busbw GB/s</th></tr>")
    rows = "".join(f"<tr><td>{html.escape(r['op'])}</td><td>{r['bytes']}</td><td>{r['count']}</td>"
                   f"<td>{r['mean_us'] / 1e3:.3f}</td><td>{r['p50_us'] / 1e3:.3f}</td><td>{r['p99_us'] / 1e3:.3f}</td>"
                   f"<td>{r['algbw_gbps']:.3f}</td><td>{r['busbw_gbps']:.3f}</td></tr>" for r in comms["rows"])
    return (f"<section><h2>Communication ({comms['world_size']} ranks, rank 0's view)</h2>"
            f"<table>{head}{rows}</table></section>")


def _summary(series):
    steps = series.get("global_step", {})
    rate = list(series.get("samples_per_sec", {}).values())
    loss = [v for _, v in sorted(series.get("train_loss", {}).items())]
    parts = [f"{int(max(steps.values())) if steps else 0} optimizer steps"]
    if rate:
        parts.append(f"median {statistics.median(rate):.1f} samples/s")
    if loss:
        parts.append(f"loss {loss[0]:.4g} &rarr; {loss[-1]:.4g}")
    skipped = series.get("skipped_steps", {})
    if skipped:
        parts.append(f"{int(max(skipped.values()))} skipped step(s)")
    return " &middot; ".join(parts)


_STYLE = """body{font-family:sans-serif;margin:24px;max-width:1200px;color:#222}
h1{margin-bottom:4px}.summary{color:#555;margin-bottom:16px}section{margin:18px 0}
img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;font-size:13px;margin-top:8px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}tr.idle{background:#fdd}.note{color:#a33}"""


def make_report(log_dir):
    """Writes log_dir/report.html (and report_*.png); returns its path."""
    series = read_run_log(log_dir)
    plt = _pyplot()
    body = [_figure("Loss and learning rate", plot_training(series, plt), "training", log_dir),
            _figure("Step time: forward, backward, exposed communication, optimizer",
                    plot_breakdown(series, plt), "step_time", log_dir),
            _gpu_section(read_gpu_samples(log_dir), plt, log_dir),
            _comms_section(read_comms(log_dir))]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>zshard run report</title>"
            f"<style>{_STYLE}</style></head><body><h1>zshard run report</h1>"
            f"<div class=summary>{html.escape(os.path.abspath(log_dir))}: {_summary(series)}</div>"
            + "".join(body) + "</body></html>")
    path = os.path.join(log_dir, "report.html")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(path + ".tmp", path)
    return path


def main(argv):
    if len(argv) != 1:
        print("usage: python3 -m zshard.report LOG_DIR", file=sys.stderr)
        return 2
    try:
        path = make_report(argv[0])
    except (ReportError, OSError) as e:
        print(f"zshard report: {e}", file=sys.stderr)
        return 1
    print(f"zshard report: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
