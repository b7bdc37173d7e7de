"""ZeRO-3 prefetch policy: the order in which a pass (one forward and its
backward, from the root module's forward to the end of engine.backward)
first uses each run of parameters, recorded on the first training pass;
later passes walk it to start the next gathers early and to keep a
released run gathered when it is used again soon.

Why this cannot hang: every decision is a function of the recorded order
and of the pass so far, both the same on every rank that runs the same
modules, so every rank starts the same gathers in the same order. A pass
whose order differs from the record (eval, a branch every rank takes)
stops prefetching at the first difference, on every rank at the same
point: what was started is still waited for, then the rest of the pass
gathers on demand, and a training pass's new order becomes the record.
Ranks running different modules fail at their next gather or at the end
of the pass, each naming what every rank gathered (ModelCopy's check),
prefetched or not.
"""


class Order:
    """`bucket`: most elements in flight ahead of use (0: no prefetch);
    `max_live`: most elements gathered at once by prefetch and reuse;
    `max_reuse`: a released run whose next use comes within this many
    elements of other runs' gathers stays gathered. `log(text)` reports a
    changed order: the first time, or each time with `log_every`."""

    def __init__(self, bucket, max_live, max_reuse, log, log_every=False):
        self.bucket, self.max_live, self.max_reuse = bucket, max_live, max_reuse
        self._log, self._log_every, self._logged = log, log_every, False
        self.trace = None  # the recorded order: runs by first use in a pass
        self._seen = []  # this pass's order so far
        self._pos = 0  # where this pass is in the trace
        self.following = False  # this pass matches the trace so far
        self._passes = 0

    def begin_pass(self):
        self._seen, self._pos = [], 0
        self.following = self.trace is not None and self.bucket + self.max_reuse > 0
        self._passes += 1

    def end_pass(self, trained):
        """A pass ended with a backward (`trained`): its order is the record
        from now on when there is none yet or it differed."""
        if trained and (self.trace is None or self._seen != self.trace):
            self.trace = list(self._seen)
        self.following = False

    def used(self, run):
        """`run` comes into use (gathered, prefetched or kept): True where
        the pass follows the trace, False where it leaves it here (logged),
        None where it does not follow one."""
        self._seen.append(run)
        if not self.following:
            return None
        if self._pos < len(self.trace) and self.trace[self._pos] is run:
            self._pos += 1
            return True
        self.following = False
        if self._log_every or not self._logged:
            self._logged = True
            expected = self.trace[self._pos].name if self._pos < len(self.trace) else "the end of the pass"
            self._log(f"ZeRO-3 prefetch: pass {self._passes} gathers {run.name} where the recorded order has "
                      f"{expected}; gathering on demand for the rest of this pass" +
                      ("" if self._log_every else " (logged once; log_trace_cache_warnings logs each)"))
        return False

    def ahead(self, available, in_flight, live):
        """Runs to start gathering now, in trace order: the next ones not
        `available(run)` (gathered or in flight), while `in_flight` +
        theirs stays within the bucket and `live` + theirs within
        max_live."""
        out = []
        if not self.following or self.bucket <= 0:
            return out
        for run in self.trace[self._pos:]:
            if available(run) or run in out:
                continue
            if in_flight + run.numel > self.bucket or live + run.numel > self.max_live:
                break
            out.append(run)
            in_flight += run.numel
            live += run.numel
        return out

    def keep(self, run, live):
        """Whether a run whose last use just ended stays gathered (`live`:
        what is gathered, it included): its next use in the trace comes
        within max_reuse elements and leaves a prefetch bucket's room within
        max_live (prefetching goes first), or so soon that prefetch would
        gather it again at once (within the bucket)."""
        if not self.following or live > self.max_live:
            return False
        distance = 0
        for later in self.trace[self._pos:]:
            if later is run:
                return ((distance <= self.max_reuse and live + max(self.bucket, 0) <= self.max_live)
                        or distance + run.numel <= self.bucket)
            distance += later.numel
            if distance > max(self.max_reuse, self.bucket):
                return False
        return False
