#!/usr/bin/env python3
"""The independent reference for cxr-train's TensorBoard writer (crates/cxr-train/src/tensorboard.rs).

Reads the committed events files in tests/fixtures/tensorboard/ (written by our writer from
session1.jsonl, and after a resume at step 4 from session2.jsonl; tests/tensorboard.rs checks
that the writer still produces them byte for byte) with TensorBoard's own EventAccumulator,
which checks every record's CRC and, on the second file's SessionLog START, drops what the
first file holds at step 4 or later. Writes the scalars it sees, per tag in the order it
returns them, to tests/fixtures/tensorboard/scalars_golden.json:
{"tensorboard": version, "files": [{"name", "file_version", "events", "session_starts": [step,
...]}], "scalars": {tag: [[step, value], ...]}} ("files" from TensorBoard's event file loader,
one file at a time).

tensorboard 2.20.0 (pinned in scripts/goldens/requirements.txt).
Run: python3 scripts/goldens/cxr-train/read_tfevents.py
"""
import json
import pathlib

import tensorboard
from tensorboard.backend.event_processing import event_accumulator, event_file_loader
from tensorboard.compat.proto import event_pb2

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "tensorboard"

files = sorted(FIXTURES.glob("events.out.tfevents.*"))
assert len(files) == 2, f"expected the two fixture events files, found {files}"

per_file = []
for path in files:
    events = list(event_file_loader.LegacyEventFileLoader(str(path)).Load())
    per_file.append(
        {
            "name": path.name,
            "file_version": events[0].file_version,
            "events": len(events),
            "session_starts": [
                e.step
                for e in events
                if e.HasField("session_log") and e.session_log.status == event_pb2.SessionLog.START
            ],
        }
    )

acc = event_accumulator.EventAccumulator(
    str(FIXTURES),
    size_guidance={event_accumulator.SCALARS: 0},  # keep every point
    purge_orphaned_data=True,  # TensorBoard's default
)
acc.Reload()
scalars = {
    tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in sorted(acc.Tags()["scalars"])
}
out = FIXTURES / "scalars_golden.json"
out.write_text(
    json.dumps(
        {"tensorboard": tensorboard.__version__, "files": per_file, "scalars": scalars}, indent=1
    ) + "\n"
)
print(f"{sum(len(v) for v in scalars.values())} scalars in {len(scalars)} tags -> {out}")
