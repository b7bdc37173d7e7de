"""Watching a run (observe_check.py under zlaunch, 2 CPU workers): the
monitors' files against what the engine said at each step, the TensorBoard
event file through an independent reader (its own CRC32C, protobuf's Python
module), the merged Chrome trace, the comms table against the engine's
buckets, the run report rendered by headless Chromium; and the failures a
user can cause (wandb missing, an unwritable path)."""
import csv
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import types

import pytest
import torch

from zshard import flops_profiler

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
ZLAUNCH = os.environ.get("ZLAUNCH", os.path.join(ROOT, "build", "zlaunch"))
STEPS = 6
TAG = "Train/Samples/"


def zlaunch(*args, env=None, timeout=300):
    env = dict(os.environ, ZSHARD_PYTHON=sys.executable, **(env or {}))
    return subprocess.run([ZLAUNCH, *args], capture_output=True, text=True, timeout=timeout, env=env)


def observed_run(tmp, extra=None):
    """The run every test of the observed files reads (made once per module)."""
    config = {"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2, "steps_per_print": 3,
              "wall_clock_breakdown": True, "optimizer": {"type": "AdamW", "params": {"lr": 0.01}},
              "scheduler": {"type": "WarmupLR", "params": {"warmup_max_lr": 0.01, "warmup_num_steps": 4}},
              "zero_optimization": {"stage": 2, "reduce_bucket_size": 300},
              "csv_monitor": {"enabled": True, "output_path": str(tmp / "csv"), "job_name": "job"},
              "tensorboard": {"enabled": True, "output_path": str(tmp / "tb"), "job_name": "job"},
              "comms_logger": {"enabled": True},
              "flops_profiler": {"enabled": True, "profile_step": 2, "output_file": str(tmp / "flops.txt")},
              "zshard": {"trace": {"enabled": True, "output_path": str(tmp / "trace"), "steps": [2, 4]}}}
    config.update(extra or {})
    (tmp / "ds.json").write_text(json.dumps(config))
    r = zlaunch("--nproc-per-node", "2", "--log-dir", str(tmp / "logs"), "--tee", "--config", str(tmp / "ds.json"),
                os.path.join(HERE, "observe_check.py"), str(tmp / "ds.json"), str(tmp), str(STEPS))
    assert r.returncode == 0 and r.stdout.count("OBSERVE OK") == 2, r.stdout + r.stderr
    return r, json.loads((tmp / "record.json").read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("observed")
    r, record = observed_run(tmp)
    return types.SimpleNamespace(dir=tmp, out=r.stdout + r.stderr, **record)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [(int(s), float(v)) for s, v in rows[1:]]


def expected(run):
    """{tag: [(step, value)]} from what the engine said (record.json), with
    DeepSpeed's indexing: train_loss at the samples before its step."""
    out = {"train_loss": [(r["samples"] - run.batch, r["loss"]) for r in run.record]}
    for key, tag in (("lr", "lr"), ("grad_norm", "grad_norm"), ("loss_scale", "loss_scale"),
                     ("skipped", "skipped_steps")):
        out[tag] = [(r["samples"], r[key]) for r in run.record]
    return out


def close(a, b):
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


def test_csv_files_have_deepspeeds_layout_and_the_engines_values(run):
    job = run.dir / "csv" / "job"
    for tag, want in expected(run).items():
        header, rows = read_csv(job / f"Train_Samples_{tag}.csv")
        assert header == ["step", tag]
        assert [s for s, _ in rows] == [s for s, _ in want], tag
        assert all(close(v, w) for (_, v), (_, w) in zip(rows, want)), (tag, rows, want)
    for timing in ("forward", "backward", "backward_inner", "backward_allreduce", "step"):
        header, rows = read_csv(job / f"Train_Samples_elapsed_time_ms_{timing}.csv")
        assert header == ["step", f"elapsed_time_ms_{timing}"] and len(rows) == STEPS
        assert all(v >= 0 for _, v in rows)
    _, forward = read_csv(job / "Train_Samples_elapsed_time_ms_forward.csv")
    assert all(v > 0 for _, v in forward)
    _, rate = read_csv(job / "Train_Samples_samples_per_sec.csv")
    assert len(rate) == STEPS and all(v > 0 for _, v in rate)
    header, own = read_csv(job / "Eval_accuracy.csv")  # engine.monitor.write_events
    assert header == ["step", "accuracy"] and own == [(r["samples"], 0.5 + i) for i, r in enumerate(run.record)]


# -- an independent TensorBoard reader ------------------------------------

def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def event_class():
    """TensorFlow's Event (event.proto, summary.proto field numbers), built
    here with protobuf's descriptor API, not from zshard's .proto."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    fdp = descriptor_pb2.FileDescriptorProto(name="tf_event_test.proto", package="tftest", syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto
    value = fdp.message_type.add(name="Value")
    value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
    summary = fdp.message_type.add(name="Summary")
    summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED, type_name=".tftest.Value")
    event = fdp.message_type.add(name="Event")
    event.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    event.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    event.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    event.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                    type_name=".tftest.Summary")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    descriptor = pool.FindMessageTypeByName("tftest.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def read_records(path):
    data = open(path, "rb").read()
    at, records = 0, []
    while at < len(data):
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        assert length_crc == masked(header), f"length CRC of the record at byte {at}"
        body = data[at + 12:at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        assert body_crc == masked(body), f"data CRC of the record at byte {at}"
        records.append(body)
        at += 16 + length
    return records


def test_the_tensorboard_event_file_reads_back_through_an_independent_reader(run):
    pytest.importorskip("google.protobuf")
    files = list((run.dir / "tb" / "job").glob("events.out.tfevents.*"))
    assert len(files) == 1
    Event = event_class()
    events = [Event.FromString(r) for r in read_records(files[0])]
    assert events[0].file_version == "brain.Event:2"
    scalars = {}
    for e in events[1:]:
        for v in e.summary.value:
            scalars.setdefault(v.tag, []).append((e.step, v.simple_value))
    for tag, want in expected(run).items():
        got = scalars[TAG + tag]
        assert [s for s, _ in got] == [s for s, _ in want], tag
        assert all(abs(v - w) <= 1e-6 * max(1.0, abs(w)) for (_, v), (_, w) in zip(got, want)), tag  # float32
    assert len(scalars[TAG + "elapsed_time_ms_step"]) == STEPS


# -- the trace --------------------------------------------------------------

def test_the_trace_is_chromes_format_with_every_ranks_phases_on_their_threads(run):
    trace = json.loads((run.dir / "trace" / "trace.json").read_text())
    events = trace["traceEvents"]
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    slices = [e for e in events if e.get("ph") == "X"]
    for e in slices:
        assert isinstance(e["ts"], int) and isinstance(e["dur"], int) and e["dur"] >= 0
    for rank in (0, 1):
        mine = [e for e in slices if e["pid"] == rank]
        names = {e["name"].split(" #")[0] for e in mine}
        assert {"forward", "backward", "engine.step", "optimizer step", "reduce_scatter", "all_gather"} <= names, names
        # steps [2, 4] only: three optimizer steps, two micro steps each
        assert sum(e["name"] == "optimizer step" for e in mine) == 3
        assert sum(e["name"] == "forward" for e in mine) == 6
        comm = [e for e in mine if e["cat"] == "comm" and "torch.distributed" not in e.get("args", {}).values()]
        assert comm and all(threads[(rank, e["tid"])].startswith("comm") for e in comm)
        assert all(threads[(rank, e["tid"])] == "main" for e in mine if e["cat"] in ("forward", "backward"))
    by_thread = {}
    for e in slices:
        by_thread.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"], e["name"]))
    for key, spans in by_thread.items():  # slices of one thread nest or follow, never overlap partly
        open_ends = []
        for begin, end, name in sorted(spans, key=lambda s: (s[0], -s[1])):
            while open_ends and open_ends[-1] <= begin:
                open_ends.pop()
            assert not open_ends or end <= open_ends[-1], (key, name)
            open_ends.append(end)


# -- the comms log ------------------------------------------------------------

def test_the_comms_tables_bytes_are_the_engines_buckets(run):
    rows = json.loads((run.dir / "logs" / "comms.json").read_text())["rows"]
    scatter = {r["bytes"]: r["count"] for r in rows if r["op"] == "reduce_scatter"}
    backwards = STEPS * run.gas  # stage 2 reduces every micro step's buckets
    want = {}
    for size in run.collective_bytes:
        want[size] = want.get(size, 0) + backwards
    assert len(run.collective_bytes) > 2  # several buckets
    assert scatter == want
    script = [r for r in rows if r["op"] == "all_reduce" and r["bytes"] == 12]  # torch.ones(3), the script's own
    assert len(script) == 1 and script[0]["count"] == STEPS
    for r in rows:
        assert r["p50_us"] <= r["p99_us"] and r["count"] > 0
        factor = {"all_reduce": 2 * (run.world - 1) / run.world, "reduce_scatter": (run.world - 1) / run.world,
                  "all_gather": (run.world - 1) / run.world, "broadcast": 1.0, "barrier": 0.0}[r["op"]]
        if r["mean_us"] > 0:
            assert abs(r["algbw_gbps"] - r["bytes"] / (r["mean_us"] * 1e3)) < 1e-9 * max(1, r["algbw_gbps"])
            assert abs(r["busbw_gbps"] - r["algbw_gbps"] * factor) < 1e-9 * max(1, r["busbw_gbps"])
    assert "Comm. Op" in run.out and "reduce_scatter" in run.out  # the table at the end (rank 0)


def test_the_flops_profile_is_written_with_deepspeeds_sections(run):
    text = (run.dir / "flops.txt").read_text()
    for line in ("DeepSpeed Flops Profiler", "Profile Summary at step 2", "fwd MACs per GPU",
                 "Aggregated Profile per GPU", "Detailed Profile per GPU"):
        assert line in text
    # 4 samples through Linear(8,32), Linear(32,32), Linear(32,4): exact MACs
    assert f"{flops_profiler._num(4 * (8 * 32 + 32 * 32 + 32 * 4), 'MACs')}" in text


# -- the report ---------------------------------------------------------------

def test_the_run_report_renders_in_headless_chromium(run, tmp_path):
    report = run.dir / "logs" / "report.html"
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 2  # loss/lr and the step breakdown
    assert "No GPU samples" in page and "reduce_scatter" in page
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/install_deps.sh installs it)")
    shot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1200,1600",
                    f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120, check=True)
    import matplotlib.image
    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] == 1600 and pixels.shape[1] == 1200
    drawn = (pixels[:, :, :3] < 0.9).any(axis=2).mean()
    assert drawn > 0.02, f"only {drawn:.3%} of the screenshot is drawn"


def test_zlaunch_report_remakes_the_report(run):
    (run.dir / "logs" / "report.html").unlink()
    r = zlaunch("report", str(run.dir / "logs"))
    assert r.returncode == 0 and (run.dir / "logs" / "report.html").exists(), r.stderr
    r = zlaunch("report", str(run.dir / "nowhere"))
    assert r.returncode == 1 and "no run log" in r.stderr


# -- what users get wrong ---------------------------------------------------

def test_wandb_without_the_package_is_refused_at_initialize_naming_the_key(tmp_path):
    (tmp_path / "ds.json").write_text(json.dumps({"train_batch_size": 8, "optimizer": {"type": "SGD",
                                                  "params": {"lr": 0.1}}, "wandb": {"enabled": True}}))
    r = zlaunch("--nproc-per-node", "2", "--config", str(tmp_path / "ds.json"),
                os.path.join(HERE, "observe_check.py"), str(tmp_path / "ds.json"), str(tmp_path), "1")
    assert r.returncode != 0
    assert "wandb.enabled: true, but the wandb package is not importable" in r.stdout + r.stderr


def test_an_unwritable_monitor_path_is_one_warning_and_training_goes_on(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    r, _ = observed_run(tmp_path, {"csv_monitor": {"enabled": True, "output_path": str(blocker / "csv")},
                                   "comms_logger": {"enabled": False}, "flops_profiler": {"enabled": False},
                                   "zshard": {}})
    warnings = [line for line in (r.stdout + r.stderr).splitlines() if "csv_monitor" in line]
    assert len(warnings) == 1 and "cannot write there" in warnings[0], r.stderr


def test_progress_shows_on_a_terminal_and_is_one_line_elsewhere(run, tmp_path):
    ckpt = tmp_path / "ck"
    script = tmp_path / "save.py"
    script.write_text("import torch, zshard\nm = torch.nn.Linear(64, 64)\n"
                      "e, *_ = zshard.initialize(model=m, config={'train_batch_size': 2, 'optimizer': "
                      "{'type': 'SGD', 'params': {'lr': 0.1}}})\n"
                      f"e.save_checkpoint({str(ckpt)!r})\ne.load_checkpoint({str(ckpt)!r})\n")
    env = {"ZSHARD_PROGRESS_MIN_BYTES": "0"}
    r = zlaunch("--nproc-per-node", "2", str(script), env=env)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if "'s shard:" in line]
    assert len(lines) == 2 and all(line.startswith("[rank 0]") for line in lines), r.stderr  # save, load
    assert "checkpoint save, rank 0's shard:" in lines[0] and " in " in lines[0] and "MB/s" in lines[0]
    assert "checkpoint load, rank 0's shard:" in lines[1]
    # consolidate on a terminal: the line is redrawn (\r), then ends
    primary, secondary = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "zshard.consolidate", str(ckpt), str(tmp_path / "m.pt")],
                         stdout=subprocess.DEVNULL, stderr=secondary, env=dict(os.environ, **env))
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert p.wait(timeout=60) == 0
    assert b"\rconsolidate " in seen and b"MB/s" in seen, seen
    big = {"ZSHARD_PROGRESS_MIN_BYTES": str(1 << 40)}
    r = subprocess.run([sys.executable, "-m", "zshard.consolidate", str(ckpt), str(tmp_path / "n.pt")],
                       capture_output=True, text=True, env=dict(os.environ, **big))
    assert r.returncode == 0 and "consolidate " not in r.stderr  # small: nothing to show


# -- the flops counting itself, against hand-computed MACs ------------------

def test_flops_counting_matches_the_formulas():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8 * 6 * 6, 10)

        def forward(self, x):
            h = torch.relu(self.conv(x)).flatten(1)
            return torch.matmul(self.fc(h), torch.ones(10, 5))

    net = Net()
    o = types.SimpleNamespace(profile_step=0, module_depth=-1, top_modules=1, flops_detailed=True,
                              recompute_fwd_factor=0.0, flops_output_file="")
    profiler = flops_profiler.Profiler(net, o, 1)
    profiler.forward_start(0)
    net(torch.randn(2, 3, 6, 6))
    profiler.forward_end()
    conv_macs = 2 * 8 * 6 * 6 * 3 * 3 * 3
    fc_macs = 2 * 288 * 10
    mm_macs = 2 * 5 * 10
    c = profiler._counter
    assert c.macs[net.conv] == conv_macs and c.macs[net.fc] == fc_macs
    assert c.macs[net] == conv_macs + fc_macs + mm_macs
    relu = 2 * 8 * 6 * 6
    assert c.flops[net] == 2 * (conv_macs + fc_macs + mm_macs) + 2 * 8 * 6 * 6 + 2 * 10 + relu  # + biases
    assert torch.nn.functional.linear.__name__ == "linear"  # everything patched is restored
    assert "counted" not in repr(torch.matmul)


def test_the_report_shows_every_reserved_gpu_and_flags_idle_ones(run, tmp_path):
    """zlaunch's NVML samples (gpu_node<N>.csv, as launcher/gpu_monitor.cc
    writes them) of two nodes: one GPU without a worker, one idle."""
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(run.dir / "logs" / "metrics.jsonl", logs)
    for node, host in enumerate(("gpu07", "gpu08")):
        rows = ["time,host,gpu,worker,utilisation,memory_mib"]
        for t in range(5):
            rows += [f"{t},{host},0,1,{90 + t},{4000 + t}", f"{t},{host},1,{0 if node == 0 else 1},"
                     f"{0 if node == 0 else 3},{0 if node == 0 else 900}"]
        (logs / f"gpu_node{node}.csv").write_text("\n".join(rows) + "\n")
    r = zlaunch("report", str(logs))
    assert r.returncode == 0, r.stderr
    page = (logs / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and (logs / "report_gpus.png").exists()
    assert "No GPU samples" not in page and "No communication table" in page
    assert "<td>gpu07</td><td>1</td><td>0%</td><td>0</td><td>NO WORKER</td>" in page
    assert "<td>gpu08</td><td>1</td><td>3%</td><td>900</td><td>IDLE</td>" in page
    assert "<td>gpu08</td><td>0</td><td>92%</td><td>4004</td><td></td>" in page


def test_zlaunch_trace_traces_a_job_whose_config_says_nothing(tmp_path):
    (tmp_path / "ds.json").write_text(json.dumps({"train_micro_batch_size_per_gpu": 2, "optimizer": {
        "type": "SGD", "params": {"lr": 0.1}}, "zero_optimization": {"stage": 1}}))
    r = zlaunch("--nproc-per-node", "2", "--trace", str(tmp_path / "t"), "--config", str(tmp_path / "ds.json"),
                os.path.join(HERE, "observe_check.py"), str(tmp_path / "ds.json"), str(tmp_path), "2")
    assert r.returncode == 0, r.stdout + r.stderr
    events = json.loads((tmp_path / "t" / "trace.json").read_text())["traceEvents"]
    for rank in (0, 1):
        steps = [e for e in events if e.get("pid") == rank and e.get("name") == "optimizer step"]
        assert len(steps) == 2
    assert "open it in ui.perfetto.dev" in r.stderr
