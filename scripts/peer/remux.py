"""Remuxes one recording N times back to back into one file, without re-encoding: every packet of
copy k is shifted by k × the copy's length in its stream's own time base, so timestamps run on
continuously (issue 17's one-hour input is the committed 24 s clip copied 150 times).

Usage: python remux.py IN OUT N
"""
import sys

import av


def span(path):
    """Per stream: (first dts, end) in the stream's time base, end = last dts + its duration."""
    first, end = {}, {}
    with av.open(path) as c:
        for p in c.demux():
            if p.dts is None:
                continue
            i = p.stream.index
            first.setdefault(i, p.dts)
            end[i] = max(end.get(i, p.dts), p.dts + (p.duration or 0))
    return {i: (first[i], end[i]) for i in first}


def main():
    src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spans = span(src)
    with av.open(dst, "w", format="mp4") as out:
        with av.open(src) as c:
            streams = {s.index: out.add_stream_from_template(s) for s in c.streams}
        for k in range(n):
            with av.open(src) as c:
                for p in c.demux():
                    if p.dts is None:
                        continue
                    first, end = spans[p.stream.index]
                    shift = k * (end - first)
                    p.dts += shift
                    p.pts += shift
                    p.stream = streams[p.stream.index]
                    out.mux(p)


if __name__ == "__main__":
    main()
