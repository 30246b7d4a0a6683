"""The safety screen on a corpus: every alarming message caught, every idiom left alone.

The corpus is the screen's specification: a change to content/safety/patterns.yaml
must keep every line here passing. Messages are written the way learners write
(typos, no punctuation, slang, leetspeak), in English and Spanish.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.coach.safety import SafetyPatternError, Screen, load_screen, screen
from bot.paths import shipped

POSITIVES: list[tuple[str, str]] = [
    # -- suicide, English ---------------------------------------------------------------
    ("I want to die", "suicide"),
    ("i wanna die", "suicide"),
    ("I want to kill myself", "suicide"),
    ("kms", "suicide"),
    ("honestly kms lol", "suicide"),
    ("I'm thinking about suicide", "suicide"),
    ("i feel sucidal", "suicide"),
    ("I wish I was dead", "suicide"),
    ("I don't want to live anymore", "suicide"),
    ("everyone would be better off without me", "suicide"),
    ("i w4nt t0 d1e", "suicide"),
    ("i want to dieeeee", "suicide"),
    ("kil myslef", "suicide"),
    ("I have no reason to live", "suicide"),
    ("what's the point of living", "suicide"),
    ("I wish I could go to sleep and never wake up", "suicide"),
    ("I'm going to take all my pills tonight", "suicide"),
    ("I've been thinking about ending my life", "suicide"),
    ("my friend said she wants to kill herself", "suicide"),
    ("i might just unalive myself", "suicide"),
    ("someone told me to kys", "suicide"),
    ("I wnat to dye", "suicide"),
    ("nobody would care if I died", "suicide"),
    ("I'm going to jump off the bridge", "suicide"),
    ("I'd never kill myself but sometimes I think about it", "suicide"),
    ("this homework is killing me and honestly i want to die", "suicide"),
    # -- suicide, Spanish ---------------------------------------------------------------
    ("quiero morirme", "suicide"),
    ("me quiero morir", "suicide"),
    ("ya no quiero vivir", "suicide"),
    ("kiero matarme", "suicide"),
    ("pienso en suicidarme", "suicide"),
    ("me voy a quitar la vida", "suicide"),
    ("todos estarían mejor sin mí", "suicide"),
    ("ojalá no hubiera nacido", "suicide"),
    ("no vale la pena vivir", "suicide"),
    ("tengo pensamientos suicidas", "suicide"),
    ("quiero dormir y no despertar", "suicide"),
    ("me voy a tomar todas las pastillas", "suicide"),
    ("m3 qui3ro morir", "suicide"),
    ("quiero suisidarme", "suicide"),
    # -- self-harm ----------------------------------------------------------------------
    ("I cut myself last night", "self_harm"),
    ("i've been cutting again", "self_harm"),
    ("I want to hurt myself", "self_harm"),
    ("I burn myself when I'm stressed", "self_harm"),
    ("I self harm", "self_harm"),
    ("i relapsed on self-harm", "self_harm"),
    ("I hide the cuts on my arms", "self_harm"),
    ("sometimes I punch myself", "self_harm"),
    ("me corto los brazos", "self_harm"),
    ("me hago daño a propósito", "self_harm"),
    ("quiero lastimarme", "self_harm"),
    ("me autolesiono", "self_harm"),
    ("tengo ganas de cortarme", "self_harm"),
    # -- abuse and neglect --------------------------------------------------------------
    ("my stepdad hits me", "abuse"),
    ("my dad beats me when he's drunk", "abuse"),
    ("someone touched me down there", "abuse"),
    ("my uncle touches me and I don't like it", "abuse"),
    ("he makes me do things I don't want to", "abuse"),
    ("I was molested", "abuse"),
    ("I'm scared to go home", "abuse"),
    ("there's no food at home and nobody takes care of me", "abuse"),
    ("they leave me alone for days", "abuse"),
    ("he said he would hurt me if I told", "abuse"),
    ("a guy online keeps asking me for nudes", "abuse"),
    ("my mom's boyfriend chokes me", "abuse"),
    ("mi papá me pega", "abuse"),
    ("mi tío me toca y no me gusta", "abuse"),
    ("mi padrastro me golpea", "abuse"),
    ("me obliga a hacer cosas que no quiero", "abuse"),
    ("tengo miedo de volver a casa", "abuse"),
    ("no me dan de comer", "abuse"),
    ("me dijo que no le contara a nadie", "abuse"),
    ("abusó de mí", "abuse"),
    # -- violence -----------------------------------------------------------------------
    ("I'm going to bring a gun to school", "violence"),
    ("im gonna shoot up the school", "violence"),
    ("a kid has a knife in his backpack", "violence"),
    ("I want to stab him", "violence"),
    ("i'll kill you", "violence"),
    ("they jumped me after school", "violence"),
    ("someone threatened to stab me", "violence"),
    ("I got beat up at the park", "violence"),
    ("they said they'll beat me up tomorrow", "violence"),
    ("bringing 🔫 to school", "violence"),
    ("voy a llevar una pistola a la escuela", "violence"),
    ("quiero matarlos a todos", "violence"),
    ("te voy a matar", "violence"),
    ("me amenazaron con un cuchillo", "violence"),
    ("me golpearon a la salida", "violence"),
    ("van a poner una bomba en la escuela", "violence"),
]

NEGATIVES: list[str] = [
    # -- English idioms -----------------------------------------------------------------
    "this homework is killing me",
    "my feet are killing me",
    "I'm dying to see it",
    "I'm dying to know what happens next",
    "my phone died",
    "my laptop battery is dead again",
    "I could kill for a pizza",
    "I'm dead tired",
    "I killed it on the test",
    "she totally killed it at the recital",
    "I almost died laughing",
    "lol that joke killed me",
    "I'm so bored I could die",
    "that cake is to die for",
    "we need to kill some time before the bus",
    "kill two birds with one stone",
    "I'd rather die than wear that",
    "killing myself laughing at this meme",
    "I killed the boss in the game",
    "I'm going to kill them in Fortnite tonight",
    "I bombed the test",
    "shoot, I forgot my homework",
    "I'll shoot you a text later",
    "we shot a video for media class",
    "I want to shoot some hoops after school",
    "she beats me at chess every time",
    "hit me up later",
    "the story really touched me",
    "keep in touch",
    "I cut myself a slice of cake",
    "I cut myself shaving",
    "I hurt myself playing soccer",
    "I'm going to cut my hair",
    "my coach kicked me off the team",
    "we ran suicides in basketball practice",
    "we watched Suicide Squad",
    # -- English: school work, history, stories, grief ----------------------------------
    "the soldiers killed thousands of people in the battle",
    "Romeo kills himself at the end of the play",
    "Napoleon died in 1821",
    "my grandpa died last year and I miss him",
    "we learned how the dinosaurs died",
    "the main character dies in chapter 3",
    "I have a skill I want to improve",
    "I want to improve my skills in math",
    "I want to get better at fractions",
    "I'm reading a book about World War 2",
    "cells die when they don't get oxygen",
    "I want to dye my hair blue",
    "my plant died because I forgot to water it",
    # -- English negations --------------------------------------------------------------
    "I don't want to die",
    "I'm not suicidal, just stressed about exams",
    "I would never hurt myself",
    "I'm not going to kill myself, don't worry",
    # -- Spanish idioms and everyday sentences ------------------------------------------
    "me muero de risa",
    "me muero de hambre",
    "me muero por verte",
    "me muero de ganas de ir al concierto",
    "esta tarea me está matando",
    "se me murió el celular",
    "mi celular se murió",
    "estoy muerto de cansancio",
    "el pastel está de muerte",
    "tengo que matar el tiempo",
    "matar dos pájaros de un tiro",
    "me voy a morir de aburrimiento",
    "me quiero morir de la vergüenza",
    "me voy a cortar el pelo",
    "me corté el dedo cocinando",
    "hoy me toca lavar los platos",
    "ahora me toca a mí",
    "la profesora me toca el hombro para despertarme",
    "los soldados mataron a muchos en la batalla",
    "mi abuelo murió el año pasado",
    "en la película el héroe se muere",
    "no me quiero morir sin ver ese concierto",
    "no quiero vivir en esta ciudad",
    "mi hermano me gana siempre en el juego",
    "maté al jefe en el juego",
    "me hice daño jugando fútbol",
    "voy a pegar la foto en el cuaderno",
    "no me quiero morir",
    "quiero mejorar en matemáticas",
    "la mitosis es cuando las células se dividen",
]


def test_the_corpus_is_big_enough() -> None:
    assert len(POSITIVES) >= 60
    assert len(NEGATIVES) >= 60
    languages = {text: "es" if any(c in text for c in "áéíóúñ¿") else "?" for text, _ in POSITIVES}
    assert sum(1 for v in languages.values() if v == "es") >= 5


@pytest.mark.parametrize(("text", "category"), POSITIVES)
def test_every_alarming_message_is_caught(text: str, category: str) -> None:
    found = screen(text)
    assert found is not None, f"missed: {text!r} (read as {load_screen().normalise(text)!r})"
    assert found.category == category, f"{text!r}: {found}"


@pytest.mark.parametrize("text", NEGATIVES)
def test_idioms_and_ordinary_talk_pass(text: str) -> None:
    assert screen(text) is None, f"false alarm on {text!r}: {screen(text)}"


def test_the_finding_says_which_language_matched() -> None:
    english, spanish = screen("I want to die"), screen("quiero morirme")
    assert english is not None
    assert english.language == "en"
    assert spanish is not None
    assert spanish.language == "es"


def test_empty_and_odd_input_is_safe() -> None:
    for text in ("", "   ", "!!!", "👍", "12345", "ok" * 5000, "\x00\n\t"):
        assert screen(text) is None


def test_it_is_fast() -> None:
    # Runs on every learner message: report the figure, and keep it well under a
    # millisecond (a generous bound, so a slow CI machine never fails it).
    corpus = [text for text, _ in POSITIVES] + NEGATIVES
    load_screen().check("warm up")
    started = time.perf_counter()
    rounds = 20
    for _ in range(rounds):
        for text in corpus:
            screen(text)
    per_message = (time.perf_counter() - started) / (rounds * len(corpus))
    print(f"safety screen: {per_message * 1e6:.1f} µs per message")
    assert per_message < 0.001


def test_a_broken_patterns_file_is_named(tmp_path: Path) -> None:
    text = (shipped("content") / "safety" / "patterns.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "patterns.yaml"
    broken.write_text(text.replace('"<want> (?:to )', '"<wants> (?:to )', 1), encoding="utf-8")
    with pytest.raises(SafetyPatternError, match="unknown word list <wants>"):
        Screen.load(broken)
    broken.write_text(text.replace("  violence:\n", "  violent:\n", 1), encoding="utf-8")
    with pytest.raises(SafetyPatternError, match="categories must be exactly"):
        Screen.load(broken)
