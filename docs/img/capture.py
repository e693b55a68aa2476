"""A screenshot of a page served here, in headless Chromium driven over its DevTools protocol.

    python docs/img/capture.py URL OUT.png [--size 1600x900] [--wait 8] [--script JS] [--then 3]

Plain ``chromium --screenshot`` cannot act on a page; MLflow's UI opens an assistant panel on a first
visit, which ``--script`` (JavaScript run in the page once it has loaded) closes before the picture
is taken. Uses aiohttp's websocket client (installed with mlflow). The PNG is then reduced to a
256-colour palette (Pillow): the same picture at a fraction of the size.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
from PIL import Image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _page_socket(port: int, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                pages = [t for t in json.load(answer) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("Chromium's DevTools endpoint did not answer")
        time.sleep(0.3)


async def _capture(ws_url: str, url: str, width: int, height: int, wait: float, script: str | None,
                   then: float) -> bytes:
    ids = iter(range(1, 1_000_000))

    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, max_msg_size=0) as ws:
        async def call(method: str, **params: object) -> dict:
            number = next(ids)
            await ws.send_str(json.dumps({"id": number, "method": method, "params": params}))
            while True:
                message = json.loads((await ws.receive()).data)
                if message.get("id") == number:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return message.get("result", {})

        await call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        await call("Page.enable")
        await call("Page.navigate", url=url)
        await asyncio.sleep(wait)
        if script:
            result = await call("Runtime.evaluate", expression=script, awaitPromise=True, returnByValue=True)
            print(f"script: {result.get('result', {}).get('value')}")
            await asyncio.sleep(then)
        shot = await call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])


def capture(url: str, out: Path, width: int, height: int, wait: float, script: str | None, then: float) -> None:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium: apt-get install chromium")
    port, profile = _free_port(), tempfile.mkdtemp()
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--remote-debugging-port={port}",
         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        png = asyncio.run(_capture(_page_socket(port), url, width, height, wait, script, then))
    finally:
        browser.terminate()
        browser.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)
    out.write_bytes(png)
    Image.open(out).convert("RGB").quantize(256).save(out, optimize=True)
    print(f"{out}: {out.stat().st_size // 1024} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", default="1600x900", help="WIDTHxHEIGHT of the window")
    parser.add_argument("--wait", type=float, default=8.0, help="seconds for the page to load")
    parser.add_argument("--script", help="JavaScript run once the page has loaded")
    parser.add_argument("--then", type=float, default=3.0, help="seconds after the script")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    capture(args.url, args.out, width, height, args.wait, args.script, args.then)


if __name__ == "__main__":
    main()
