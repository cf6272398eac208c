"""The spoken captcha, through the real espeak-ng: a valid WAV whose length fits the digits, digits a
listener can tell apart over noise that never stops, the page's language, and a subprocess that is cut
off when it misbehaves. The figures are measured on the samples, as one would check a recording."""

from __future__ import annotations

import array
import io
import math
import stat
import wave

import pytest

from idp.services import captcha_audio

WINDOW = 480  # 30 ms at 16 kHz


def samples(data: bytes) -> tuple[wave.Wave_read, array.array]:
    reader = wave.open(io.BytesIO(data))  # noqa: SIM115 - returned to the caller, over bytes in memory
    values = array.array("h", reader.readframes(reader.getnframes()))
    return reader, values


def windows_rms(values) -> list[float]:
    return [
        math.sqrt(sum(v * v for v in values[i : i + WINDOW]) / WINDOW)
        for i in range(0, len(values) - WINDOW, WINDOW)
    ]


def db(value: float) -> float:
    return 20 * math.log10(max(value, 1e-9) / 32768)


def bursts(levels: list[float], threshold: float, gap: int = 5) -> int:
    """Stretches of windows above ``threshold``, merging those less than ``gap`` windows apart."""
    count, quiet = 0, gap
    for level in levels:
        if level > threshold:
            if quiet >= gap:
                count += 1
            quiet = 0
        else:
            quiet += 1
    return count


@pytest.fixture
def clean(monkeypatch):
    """The digits alone, without babble and hiss."""

    def render(answer: str, seed: bytes, language: str = "ru") -> bytes:
        with monkeypatch.context() as patch:
            patch.setattr(captcha_audio, "BABBLE_LEVEL", 0)
            patch.setattr(captcha_audio, "HISS_LEVEL", 0)
            return captcha_audio.render_wav(answer, language=language, seed=seed)

    return render


@pytest.mark.parametrize("answer", ["24680", "359"])
def test_a_valid_wav_whose_length_fits_the_digits(answer):
    data = captcha_audio.render_wav(answer, language="ru", seed=b"seed")
    reader, values = samples(data)
    assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 16000)
    seconds = reader.getnframes() / reader.getframerate()
    assert 0.5 * len(answer) <= seconds <= 2 * len(answer), seconds
    # Loud enough to hear on a phone, never clipped.
    assert -6 < db(max(map(abs, values))) < -0.1


def test_each_digit_stands_apart(clean):
    # With the noise off, the digits are separate sounds with pauses between them: a person can count
    # them and write them down one by one.
    _, values = samples(clean("24680", b"seed"))
    levels = windows_rms(values)
    assert bursts(levels, max(levels) * 0.1) == 5


def test_digits_stand_above_noise_that_never_stops(clean):
    seed = b"another seed"
    _, mixed = samples(captcha_audio.render_wav("24680", language="ru", seed=seed))
    _, speech = samples(clean("24680", seed))
    noise = [a - b for a, b in zip(mixed, speech, strict=False)]
    speech_levels, noise_levels = windows_rms(speech), windows_rms(noise)
    loudest = max(speech_levels)
    active = [level for level in speech_levels if level > loudest * 0.1]
    speech_rms = math.sqrt(sum(v * v for v in active) / len(active))
    noise_rms = math.sqrt(sum(v * v for v in noise_levels) / len(noise_levels))
    snr = db(speech_rms) - db(noise_rms)
    # Clear for a listener (digits in babble are understood well above 0 dB), yet a segmenter finds no
    # silence: the quietest tenth of the noise is still well above digital silence.
    assert 6 < snr < 16, snr
    assert db(sorted(noise_levels)[len(noise_levels) // 10]) > -45


def test_one_challenge_always_sounds_the_same_and_another_does_not():
    first = captcha_audio.render_wav("24680", language="ru", seed=b"one")
    assert captcha_audio.render_wav("24680", language="ru", seed=b"one") == first
    assert captcha_audio.render_wav("24680", language="ru", seed=b"two") != first
    assert captcha_audio.render_wav("24689", language="ru", seed=b"one") != first


def test_each_language_has_its_voice_and_tajik_gets_the_persian_one(clean):
    spoken = {language: clean("24680", b"seed", language) for language in ("ru", "en", "uz", "ky", "tg")}
    assert len(set(spoken.values())) == 5
    assert captcha_audio.VOICES["tg"] == "fa"
    # A language without a voice of its own is spoken in Russian.
    assert clean("24680", b"seed", "xx") == spoken["ru"]


def _program(tmp_path, body: str) -> str:
    path = tmp_path / "fake-espeak"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_a_missing_program_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(captcha_audio, "PROGRAM", str(tmp_path / "no-such-program"))
    with pytest.raises(captcha_audio.SpeechError, match="cannot run"):
        captcha_audio.render_wav("24680", language="ru", seed=b"s")


def test_endless_output_is_cut_off(monkeypatch, tmp_path):
    monkeypatch.setattr(captcha_audio, "PROGRAM", _program(tmp_path, "exec cat /dev/zero"))
    with pytest.raises(captcha_audio.SpeechError, match="more than"):
        captcha_audio.render_wav("24680", language="ru", seed=b"s")


def test_a_stuck_program_is_cut_off_at_the_deadline(monkeypatch, tmp_path):
    monkeypatch.setattr(captcha_audio, "PROGRAM", _program(tmp_path, "exec sleep 30"))
    monkeypatch.setattr(captcha_audio, "TIMEOUT", 0.3)
    with pytest.raises(captcha_audio.SpeechError, match="longer than"):
        captcha_audio.render_wav("24680", language="ru", seed=b"s")


@pytest.mark.parametrize(
    "body, message",
    [
        ("cat >/dev/null; exit 3", "exited with status 3"),
        ("exec 0<&-; exit 4", "exited with status 4"),
        ("cat >/dev/null; printf 'not a wav'", "did not write a WAV"),
    ],
    ids=["failure", "dies-before-reading", "garbage"],
)
def test_a_failing_program_is_an_error(monkeypatch, tmp_path, body, message):
    monkeypatch.setattr(captcha_audio, "PROGRAM", _program(tmp_path, body))
    with pytest.raises(captcha_audio.SpeechError, match=message):
        captcha_audio.render_wav("24680", language="ru", seed=b"s")
