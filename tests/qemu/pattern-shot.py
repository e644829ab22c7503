#!/usr/bin/python3
"""pattern-shot.py: host-side check of kms-pattern's picture.

  pattern-shot.py shot  --qmp SOCK --out FILE.ppm [--device gpu0] [--palette N]
                        [--tries N]
      QMP "screendump" of QEMU's console for that device (what QEMU received
      over the vhost-user-gpu display socket). With --palette, retries (up to
      --tries, 0.3 s apart) until the picture matches, then checks it.
  pattern-shot.py check FILE.ppm --palette N
      Check a binary PPM (P6) for the pattern: four solid quadrants in the
      palette's colours and a 1-pixel black border.

Exit status: 0 match, 1 mismatch or error (reason on stderr), 2 usage.
Uses only the Python standard library (Debian's python3).
"""
import argparse, json, os, socket, sys, time

# Same table as guest/kms-pattern.c: top-left, top-right, bottom-left, bottom-right.
PALETTES = {
    1: (0xff0000, 0x00ff00, 0x0000ff, 0xffffff),
    2: (0xffff00, 0x00ffff, 0xff00ff, 0x808080),
    3: (0xff8000, 0x0080ff, 0x80ff00, 0x404040),
    4: (0x800000, 0x008000, 0x000080, 0xc0c0c0),
}
TOL = 2  # per channel


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or int(fields[3]) != 255:
        raise ValueError("not an 8-bit P6 PPM")
    w, h = int(fields[1]), int(fields[2])
    pix = data[pos + 1:]
    if len(pix) < w * h * 3:
        raise ValueError("truncated PPM")
    return w, h, pix


def check(path, palette):
    """Return None when the picture matches, else a reason."""
    w, h, pix = read_ppm(path)
    if w < 8 or h < 8:
        return "picture too small: %dx%d" % (w, h)

    def px(x, y):
        o = (y * w + x) * 3
        return (pix[o] << 16) | (pix[o + 1] << 8) | pix[o + 2]

    def near(a, b):
        return all(abs(((a >> s) & 255) - ((b >> s) & 255)) <= TOL for s in (16, 8, 0))

    want = PALETTES[palette]
    bad = []
    # The border: every pixel of the outermost rows and columns.
    for x in range(w):
        for y in (0, h - 1):
            if not near(px(x, y), 0):
                bad.append((x, y, px(x, y), 0))
    for y in range(h):
        for x in (0, w - 1):
            if not near(px(x, y), 0):
                bad.append((x, y, px(x, y), 0))
    # Each quadrant: a 16x16 grid of samples, plus the pixels right next to
    # the border and the centre lines.
    for q, colour in enumerate(want):
        x0, x1 = (1, w // 2 - 1) if q % 2 == 0 else (w // 2, w - 2)
        y0, y1 = (1, h // 2 - 1) if q < 2 else (h // 2, h - 2)
        xs = {x0, x1} | {x0 + (x1 - x0) * i // 15 for i in range(16)}
        ys = {y0, y1} | {y0 + (y1 - y0) * i // 15 for i in range(16)}
        for y in ys:
            for x in xs:
                if not near(px(x, y), colour):
                    bad.append((x, y, px(x, y), colour))
    if bad:
        x, y, got, exp = bad[0]
        return "%dx%d: %d pixel(s) differ, first at (%d,%d): %06x, expected %06x" % (
            w, h, len(bad), x, y, got, exp)
    return None


def qmp_screendump(sock_path, out, device):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    f = s.makefile("rwb", buffering=0)

    def reply():
        while True:
            line = f.readline()
            if not line:
                raise RuntimeError("QMP connection closed")
            msg = json.loads(line)
            if "return" in msg or "error" in msg:
                return msg

    f.readline()  # greeting
    for cmd in ({"execute": "qmp_capabilities"},
                {"execute": "screendump",
                 "arguments": dict({"filename": out}, **({"device": device} if device else {}))}):
        f.write(json.dumps(cmd).encode() + b"\n")
        msg = reply()
        if "error" in msg:
            raise RuntimeError("QMP %s: %s" % (cmd["execute"], msg["error"].get("desc")))
    s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("shot")
    a.add_argument("--qmp", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--device")
    a.add_argument("--palette", type=int, choices=sorted(PALETTES))
    a.add_argument("--tries", type=int, default=10)
    c = sub.add_parser("check")
    c.add_argument("file")
    c.add_argument("--palette", type=int, choices=sorted(PALETTES), required=True)
    args = ap.parse_args()

    try:
        if args.cmd == "check":
            why = check(args.file, args.palette)
        else:
            out = os.path.abspath(args.out)
            why = None
            for i in range(max(1, args.tries)):
                qmp_screendump(args.qmp, out, args.device)
                if args.palette is None:
                    break
                why = check(out, args.palette)
                if why is None:
                    break
                time.sleep(0.3)
    except Exception as e:  # noqa: BLE001 - report and fail
        print("pattern-shot: error: %s" % e, file=sys.stderr)
        return 1
    if why:
        print("pattern-shot: mismatch (palette %d): %s" % (args.palette, why), file=sys.stderr)
        return 1
    if args.cmd == "check" or args.palette is not None:
        w, h, _ = read_ppm(args.file if args.cmd == "check" else out)
        print("pattern-shot: match %dx%d palette %d" % (w, h, args.palette))
    return 0


if __name__ == "__main__":
    sys.exit(main())
