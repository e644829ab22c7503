#!/usr/bin/python3
"""qmp-input.py: scripted input through QEMU's own input devices, over QMP.

  qmp-input.py --qmp SOCK [--device ID] COMMAND...

QMP "input-send-event" reaches QEMU's built-in, non-vhost input devices
(-device virtio-keyboard-pci / virtio-tablet-pci), so the guest side of the
harness (guest/evdev-read.c, the virtio_input and evdev modules) can be
checked without any vhost-user input back end.

Commands (one argument each; every command is one input-send-event, i.e. one
SYN_REPORT group in the guest):
  key NAME        press and release QKeyCode NAME (a, esc, shift, ret, ...)
  down NAME | up NAME
                  press or release a key
  abs X Y         tablet position, both 0..32767 (QEMU's absolute scale)
  click BTN       press and release BTN (left, right, middle)
  press BTN | release BTN
  wheel N         N wheel clicks up (negative: down)
  sleep MS        wait

Exit status: 0 ok, 1 a QMP error (printed), 2 usage.
Uses only the Python standard library.
"""
import argparse, json, socket, sys, time


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""
        self.read()  # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("QMP closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self.read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise RuntimeError("%s: %s" % (name, reply["error"].get("desc", reply)))
            return reply.get("return")


def key(name, down):
    return {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": name}}}


def btn(name, down):
    return {"type": "btn", "data": {"down": down, "button": name}}


def events_of(command):
    words = command.split()
    if not words:
        raise ValueError("empty command")
    op, args = words[0], words[1:]
    need = {"key": 1, "down": 1, "up": 1, "abs": 2, "click": 1, "press": 1, "release": 1,
            "wheel": 1, "sleep": 1}
    if op not in need or len(args) != need[op]:
        raise ValueError("bad command '%s'" % command)
    if op == "key":
        return [[key(args[0], True)], [key(args[0], False)]]
    if op in ("down", "up"):
        return [[key(args[0], op == "down")]]
    if op == "abs":
        x, y = int(args[0]), int(args[1])
        if not (0 <= x <= 32767 and 0 <= y <= 32767):
            raise ValueError("abs out of range: '%s'" % command)
        return [[{"type": "abs", "data": {"axis": "x", "value": x}},
                 {"type": "abs", "data": {"axis": "y", "value": y}}]]
    if op == "click":
        return [[btn(args[0], True)], [btn(args[0], False)]]
    if op in ("press", "release"):
        return [[btn(args[0], op == "press")]]
    if op == "wheel":
        n = int(args[0])
        name = "wheel-up" if n > 0 else "wheel-down"
        out = []
        for _ in range(abs(n)):
            out += [[btn(name, True)], [btn(name, False)]]
        return out
    return [float(args[0]) / 1000.0]  # sleep


def main():
    ap = argparse.ArgumentParser(description="QMP input-send-event script")
    ap.add_argument("--qmp", required=True)
    ap.add_argument("--device", help="QOM id of the target input device (default: any)")
    ap.add_argument("commands", nargs="+")
    a = ap.parse_args()
    try:
        plan = [e for c in a.commands for e in events_of(c)]
    except ValueError as e:
        print("qmp-input: %s" % e, file=sys.stderr)
        return 2
    try:
        q = Qmp(a.qmp)
        for step in plan:
            if isinstance(step, float):
                time.sleep(step)
                continue
            args = {"events": step}
            if a.device:
                args["device"] = a.device
            q.cmd("input-send-event", **args)
            time.sleep(0.02)  # separate groups, like a person would
    except (OSError, RuntimeError, ConnectionError) as e:
        print("qmp-input: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
