"""The audio alternative of the captcha (WCAG 2.1 SC 1.1.1): the same digits, spoken by espeak-ng.

Each digit is said on its own, with a pause and slightly different speed, pitch and loudness, over
reversed background speech (babble) and a little hiss: a person follows the digits, which stand about
12 dB above the babble, while a recogniser meets speech-shaped noise that never stops. Everything random
comes from the challenge's own ``seed``, so one challenge always sounds the same: asking again gives no
new versions to average the noise away.

The result is a mono 16-bit WAV at 16 kHz, written with the standard library (``wave``, ``array``).
espeak-ng runs as a subprocess, never through a shell, with a deadline and a cap on what it may write.
"""

from __future__ import annotations

import array
import contextlib
import io
import os
import random
import selectors
import subprocess
import sys
import time
import wave
from typing import IO

PROGRAM = "espeak-ng"
# The page's language -> an espeak-ng voice. espeak-ng has no Tajik voice: Tajik gets Persian, whose
# digits are nearly the Tajik ones (сифр/sefr, ду/do, се/se, чор/chahâr, панҷ/panj, шаш/shesh,
# ҳашт/hasht, нӯҳ/noh), and which, unlike Russian, needs no second language from the listener.
VOICES = {"ru": "ru", "en": "en", "uz": "uz", "ky": "ky", "tg": "fa"}
DEFAULT_VOICE = "ru"

SAMPLE_RATE = 16000
# What a run may take and write: 5 digits take about 0.1 s and 200 KB; a stuck or runaway process is cut off.
TIMEOUT = 5.0
MAX_OUTPUT = 2 * 1024 * 1024
BABBLE_WORDS = 14
BABBLE_LEVEL = 0.25  # about -12 dB under the digits
HISS_LEVEL = 700  # peak of the white noise, in 16-bit units: about -33 dBFS
SPEECH_PEAK = 0.7 * 32767


class SpeechError(Exception):
    """espeak-ng is missing, failed, took too long or wrote something that is not the expected WAV."""


def render_wav(answer: str, *, language: str, seed: bytes, digits: str = "0123456789") -> bytes:
    """The digits of ``answer`` spoken in ``language``'s voice over babble of other ``digits``."""
    rnd = random.Random(seed)
    voice = VOICES.get(language, DEFAULT_VOICE)
    babble_text = " ".join(rnd.choice(digits) for _ in range(BABBLE_WORDS))
    speech_rate, speech, babble = _synthesise(
        voice, [_code_ssml(answer, rnd), _babble_ssml(babble_text, rnd)]
    )
    return _wav(_mix(speech, babble, rnd, speech_rate))


def _code_ssml(answer: str, rnd: random.Random) -> str:
    parts = [f'<speak><break time="{rnd.randint(300, 600)}ms"/>']
    for digit in answer:
        # The draws in this order: rate, pitch, volume, pause (a seed gives the same sound).
        rate, pitch, volume, pause = (
            rnd.randint(80, 105),
            rnd.randint(-15, 15),
            rnd.randint(80, 100),
            rnd.randint(450, 800),
        )
        parts.append(
            f'<prosody rate="{rate}%" pitch="{pitch:+d}%" volume="{volume}%">{digit}</prosody>'
            f'<break time="{pause}ms"/>'
        )
    parts.append("</speak>")
    return "".join(parts)


def _babble_ssml(text: str, rnd: random.Random) -> str:
    rate, pitch = rnd.randint(120, 150), rnd.choice((-30, -25, 25, 30))
    return f'<speak><prosody rate="{rate}%" pitch="{pitch:+d}%">{text}</prosody></speak>'


def _synthesise(voice: str, texts: list[str]) -> tuple[int, array.array, array.array]:
    """Run one espeak-ng per text, at the same time; return the sample rate and the samples of each."""
    args = [PROGRAM, "-v", voice, "-m", "-z", "--stdout", "--stdin"]
    try:
        procs = [
            subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            for _ in texts
        ]
    except OSError as exc:
        raise SpeechError(f"cannot run {PROGRAM}: {exc.strerror}") from exc
    try:
        for proc, text in zip(procs, texts, strict=True):
            # A few hundred bytes: the pipe takes them without blocking. A process that died already is
            # reported by its exit status below.
            stdin = _pipe(proc.stdin)
            with contextlib.suppress(BrokenPipeError):
                stdin.write(text.encode())
            with contextlib.suppress(BrokenPipeError):
                stdin.close()
        outputs = _read_all(procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            _pipe(proc.stdout).close()
    if any(proc.returncode for proc in procs):
        raise SpeechError(f"{PROGRAM} exited with status {max(proc.returncode for proc in procs)}")
    decoded = [_pcm(output) for output in outputs]
    rates = {rate for rate, _ in decoded}
    if len(rates) != 1:
        raise SpeechError(f"{PROGRAM} wrote different sample rates {sorted(rates)}")
    return decoded[0][0], decoded[0][1], decoded[1][1]


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    """A pipe of a process started with ``subprocess.PIPE`` (never None then)."""
    if stream is None:
        raise SpeechError(f"{PROGRAM} was started without a pipe")
    return stream


def _read_all(procs: list[subprocess.Popen]) -> list[bytes]:
    """Everything the processes write to stdout, within TIMEOUT and MAX_OUTPUT bytes each."""
    deadline = time.monotonic() + TIMEOUT
    chunks: dict[int, list[bytes]] = {index: [] for index in range(len(procs))}
    sizes = dict.fromkeys(chunks, 0)
    with selectors.DefaultSelector() as selector:
        for index, proc in enumerate(procs):
            selector.register(_pipe(proc.stdout), selectors.EVENT_READ, index)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SpeechError(f"{PROGRAM} took longer than {TIMEOUT} s")
            for key, _ in selector.select(remaining):
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                sizes[key.data] += len(data)
                if sizes[key.data] > MAX_OUTPUT:
                    raise SpeechError(f"{PROGRAM} wrote more than {MAX_OUTPUT} bytes")
                chunks[key.data].append(data)
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as exc:
            raise SpeechError(f"{PROGRAM} did not exit within {TIMEOUT} s") from exc
    return [b"".join(chunks[index]) for index in range(len(procs))]


def _pcm(data: bytes) -> tuple[int, array.array]:
    """The sample rate and samples of espeak-ng's streamed WAV (its size fields are placeholders)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechError(f"{PROGRAM} did not write a WAV")
    offset, rate = 12, None
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        body = offset + 8
        if chunk == b"fmt ":
            fmt, channels, rate, bits = (
                int.from_bytes(data[body + a : body + b], "little")
                for a, b in ((0, 2), (2, 4), (4, 8), (14, 16))
            )
            if (fmt, channels, bits) != (1, 1, 16):
                raise SpeechError(f"{PROGRAM} wrote format {fmt}, {channels} channels, {bits} bits")
        elif chunk == b"data" and rate:
            samples = array.array("h")
            pcm = data[body:]
            samples.frombytes(pcm[: len(pcm) // 2 * 2])
            if sys.byteorder == "big":
                samples.byteswap()
            return rate, samples
        offset = body + size + (size & 1)
    raise SpeechError(f"{PROGRAM} wrote a WAV without samples")


def _mix(speech: array.array, babble: array.array, rnd: random.Random, source: int) -> array.array:
    """Speech at SPEECH_PEAK over the babble, reversed and looped under all of it, resampled from
    ``source`` to SAMPLE_RATE, with hiss added and 16-bit clipping."""
    babble = _trimmed(babble)
    if not speech or not babble:
        raise SpeechError(f"{PROGRAM} produced no speech")
    babble.reverse()
    # Two voices of babble, half a loop apart, so that one fills the other's pauses between words.
    first = rnd.randrange(len(babble))
    second = (first + len(babble) // 2) % len(babble)
    loops = len(speech) // len(babble) + 2
    one, two = (babble[start:] + babble * loops for start in (first, second))
    speech_gain = SPEECH_PEAK / _peak(speech)
    babble_gain = SPEECH_PEAK * BABBLE_LEVEL / _peak(babble)
    mixed = [speech_gain * s + babble_gain * (a + b) for s, a, b in zip(speech, one, two, strict=False)]
    return _resample(mixed, source, array.array("h", rnd.randbytes(2 * len(speech))))


def _peak(samples: array.array) -> int:
    return max(max(samples), -min(samples)) or 1


def _trimmed(samples: array.array, floor: int = 300) -> array.array:
    """Without the silence espeak-ng leaves before and after an utterance."""
    first = next((i for i, value in enumerate(samples) if abs(value) > floor), len(samples))
    last = next((i for i in range(len(samples) - 1, -1, -1) if abs(samples[i]) > floor), -1)
    return samples[first : last + 1]


def _resample(mixed: list[float], source: int, hiss: array.array) -> array.array:
    """Linear interpolation of the [1 2 1]/4-smoothed signal (the smoothing keeps 8-11 kHz from folding
    down), plus hiss, clipped to 16 bits. One plain loop: faster here than chains of map()."""
    step = source / SAMPLE_RATE
    count = int((len(mixed) - 4) / step)
    hiss_gain = HISS_LEVEL / 32768
    out = array.array("h", bytes(2 * count))
    m = mixed
    for index in range(count):
        position = index * step
        base = int(position)
        f = position - base
        value = ((1 - f) * m[base] + (2 - f) * m[base + 1] + (1 + f) * m[base + 2] + f * m[base + 3]) * 0.25
        value += hiss[index] * hiss_gain
        out[index] = 32767 if value > 32767 else -32768 if value < -32768 else int(value)
    return out


def _wav(samples: array.array) -> bytes:
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()
