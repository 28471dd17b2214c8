"""The storyteller: template shape, LLM middle, gates before anything is shown, fallback."""

import pytest

from kiosk.emotion.labels import EMOTIONS
from kiosk.events import Attributes
from kiosk.story import gates, scenery
from kiosk.story.bank import STARTERS
from kiosk.story.teller import Partial, Storyteller, Telling, contrary, mend_hero_name, split_sentences


class ScriptedModel:
    """Streams prepared answers, one per attempt, word by word (to test the gates deterministically)."""

    name = "scripted"

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls = 0

    def stream(self, messages, prefill, max_tokens, temperature, seed):
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        for word in answer.split(" "):
            yield " " + word


def tell(teller, emotion="sad", seed=4):
    steps = list(teller.tell(emotion, seed=seed))
    return [s.text for s in steps if isinstance(s, Partial)], steps[-1]


def test_safe_generation_becomes_the_middle_scene_and_streams_by_sentence():
    teller = Storyteller(ScriptedModel("sat close by. Together they watched the rain and felt cosy. Extra words"))
    partials, telling = tell(teller)
    assert isinstance(telling, Telling) and not telling.fallback and telling.attempts == 1
    opening, middle, ending = (s.text for s in telling.story.scenes)
    assert middle.startswith("Then ") and middle.endswith("felt cosy.")
    assert "Extra words" not in middle  # cut at the last full sentence
    assert partials[0].endswith(opening) and opening not in partials[0].split("\n")[0]
    assert any(p.endswith("sat close by.") for p in partials)  # the first sentence showed before the second
    assert partials[-1].endswith(ending)


def test_unsafe_text_is_never_shown_and_is_regenerated():
    teller = Storyteller(
        ScriptedModel("chased away the scary monster with a big stick.", "gave a warm hug. It was nice.")
    )
    partials, telling = tell(teller)
    assert telling.attempts == 2 and not telling.fallback
    assert "blocklist" in telling.rejections[0]
    assert not any("monster" in p for p in partials)


def test_echo_and_repetition_exhaust_attempts_then_the_template_scene_stands_in():
    teller = Storyteller(
        ScriptedModel(
            "Continue this story in two short sentences.",
            "said hello. said hello. said hello. said hello.",
            "Tell how a friend helps Ada feel better, in two short sentences.",
        ),
        max_attempts=3,
    )
    _partials, telling = tell(teller, seed=4)
    assert telling.fallback and telling.attempts == 3
    assert [("echo" in r, "repetition" in r) for r in telling.rejections][:2] == [(True, False), (False, True)]
    middle = telling.story.scenes[1].text
    assert "Continue" not in middle and "said hello" not in middle


def test_the_safety_classifier_and_the_on_emotion_check_are_applied():
    def classifier(sentence):
        return ("sandwich" in sentence, 0.9 if "sandwich" in sentence else 0.1, "substances")

    teller = Storyteller(ScriptedModel("came closer and shared a sandwich."), unsafe=classifier, max_attempts=2)
    _, telling = tell(teller)
    assert telling.fallback and all("classifier: substances 0.90" in r for r in telling.rejections)
    assert all(c.unsafe for c in telling.candidates)
    teller = Storyteller(ScriptedModel("came and laughed."), emotion_of=lambda text: "happy", max_attempts=1)
    _, telling = tell(teller, emotion="sad")
    assert telling.fallback and "off-emotion" in telling.rejections[0]


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_without_a_model_the_template_tells_every_story(emotion):
    _, telling = tell(Storyteller(None), emotion)
    assert telling.generator == "template" and len(telling.story.scenes) == 3
    assert sum(len(s.text.split()) for s in telling.story.scenes) <= 120


def test_gates():
    assert gates.blocked_words("In a moment, the paint dried.") == []
    assert gates.blocked_words("His mom and the ghost") == ["ghost", "mom"]
    assert gates.is_echo("Continue this story please", "x")
    assert gates.echo_ratio("the cat sat on the mat", "yesterday the cat sat on the mat") == 1.0
    assert not gates.is_echo("The owl sang a song.", "Tell how a friend helps Ada feel better.")
    assert gates.is_repetitive("and then and then and then and then and then")
    assert not gates.is_repetitive("The owl sang. The rabbit danced. Everyone smiled.")
    assert split_sentences('He said "hi." Then we') == (['He said "hi."'], "Then we")


def test_the_heros_name_keeps_its_spelling_and_quotes_are_closed():
    _, first = tell(Storyteller(ScriptedModel("x.")), seed=4)
    name = first.story.hero.name
    teller = Storyteller(ScriptedModel(f'helped {name.upper()} and said, "You are safe. We are friends.'))
    _, telling = tell(teller, seed=4)
    middle = telling.story.scenes[1].text
    assert name.upper() not in middle and name in middle
    assert middle.count('"') % 2 == 0
    teller = Storyteller(ScriptedModel(f"smiled at {name}n. {name}n felt calm."))
    _, telling = tell(teller, seed=4)
    assert f"{name}n" not in telling.story.scenes[1].text and telling.story.scenes[1].text.count(name) == 2


def test_several_candidates_are_written_and_the_best_passing_one_is_shown():
    answers = (
        "brought a shiny sandwich. It was lovely.",  # refused by the classifier
        "sat down. They looked around.",  # passes, weakly coherent
        "sat close and hummed a soft song. Ada felt calmer.",  # passes, most coherent
        "said hi. Then it left.",
    )
    model = ScriptedModel(*answers)

    def classifier(sentence):
        return ("sandwich" in sentence, 0.95 if "sandwich" in sentence else 0.05, "substances")

    def coherence(opening, scene, emotion):
        return 0.9 if "hummed" in scene else 0.2

    teller = Storyteller(model, unsafe=classifier, coherence=coherence, candidates=2, max_attempts=4, budget_s=60)
    partials, telling = tell(teller)
    assert model.calls == 3  # stopped once two candidates passed
    assert [c.reason is None for c in telling.candidates] == [False, True, True]
    assert telling.chosen is telling.candidates[2]
    assert "hummed a soft song" in telling.story.scenes[1].text
    assert not any("sandwich" in p or "looked around" in p for p in partials)  # only the chosen one is shown
    assert (
        telling.candidates[0].refused_sentence.startswith("Then")
        and "sandwich" in telling.candidates[0].refused_sentence
    )


def test_the_helpers_the_adapter_was_tuned_with_are_the_ones_drawn():
    helpers = {"sad": [{"helper": "a patient tortoise", "setting": "garden", "objects": ["flower"]}]}
    teller = Storyteller(ScriptedModel("sat with them. The sun came out."), helpers=helpers)
    _, telling = tell(teller)
    assert telling.story.scenes[1].text.startswith("Then a patient tortoise came and")
    assert telling.story.scenes[1].setting == "garden"


class FluencyModel(ScriptedModel):
    """A scripted model that also reports its own token log-probabilities, as the llama.cpp backend does."""

    def __init__(self, *answers_and_logprobs: tuple[str, float]) -> None:
        super().__init__(*(answer for answer, _ in answers_and_logprobs))
        self.means = [mean for _, mean in answers_and_logprobs]
        self.last_logprobs: list[float] = []

    def stream(self, messages, prefill, max_tokens, temperature, seed):
        mean = self.means[min(self.calls, len(self.means) - 1)]
        self.last_logprobs = []
        for piece in super().stream(messages, prefill, max_tokens, temperature, seed):
            self.last_logprobs.append(mean)
            yield piece


def test_among_passing_candidates_the_one_the_model_found_most_likely_is_shown():
    model = FluencyModel(
        ("made a small hole in the sky. There was no rain.", -2.4),  # wandering: the model itself found it unlikely
        ("sat close and breathed slowly with Ada. Ada felt calmer.", -0.7),
    )
    teller = Storyteller(model, candidates=2, max_attempts=2, budget_s=60)
    _, telling = tell(teller)
    first, second = telling.candidates
    assert first.reason is None and second.reason is None
    assert first.fluency == 0.0 and second.fluency > 0.9
    assert telling.chosen is second and "breathed slowly" in telling.story.scenes[1].text
    assert telling.candidates[1].summary()["mean_logprob"] == -0.7


def test_a_backend_without_log_probabilities_ranks_as_before():
    teller = Storyteller(ScriptedModel("sat close. Ada felt calmer."), candidates=1)
    _, telling = tell(teller)
    assert telling.chosen.mean_logprob is None and telling.chosen.fluency == 0.5


@pytest.mark.parametrize(
    ("written", "mended"),
    [
        ("Lumin smiled, and lumi laughed.", "Lumi smiled, and Lumi laughed."),
        ("Lummy drew a star and Lumines coloured it.", "Lumi drew a star and Lumi coloured it."),
        ("Let's look, Lumi. Like a lion, Luna roared.", "Let's look, Lumi. Like a lion, Luna roared."),
    ],
)
def test_a_misspelt_hero_name_is_mended_and_other_words_are_not(written, mended):
    assert mend_hero_name(written, "Lumi") == mended


def test_a_candidate_the_model_itself_found_unlikely_is_refused_as_wandering():
    model = FluencyModel(
        ("came and snorted in surprise at the sky. It huddled on its back.", -2.3),
        ("sat close and breathed slowly with Ada. Ada felt calmer.", -1.2),
    )
    teller = Storyteller(model, candidates=1, max_attempts=2, budget_s=60, min_mean_logprob=-1.8)
    _, telling = tell(teller)
    assert telling.candidates[0].reason == "wandering (mean log-probability -2.30)"
    assert telling.chosen is telling.candidates[1] and not telling.fallback
    only_wandering = Storyteller(FluencyModel(("snorted in surprise.", -2.3)), max_attempts=2, min_mean_logprob=-1.8)
    _, telling = tell(only_wandering)
    assert telling.fallback  # the template's scene stands in, as for an unsafe one


def test_the_helper_is_one_written_for_the_openings_place():
    """A helper whose scene was written for a bedroom is not offered after a balloon in the sky: the scene
    would jump (a blanket in a meadow). The nearest place with helpers stands in when the place has none."""
    helpers = {
        "sad": [
            {"helper": "a sleepy cat", "setting": "room", "objects": ["cushion"]},
            {"helper": "a kind goose", "setting": "meadow", "objects": ["bird"]},
            {"helper": "a busy beaver", "setting": "river", "objects": ["tree"]},
        ]
    }
    teller = Storyteller(None, helpers=helpers)
    assert [h[0] for h in teller.helper_choices("sad", "room")] == ["a sleepy cat"]
    assert [h[0] for h in teller.helper_choices("sad", "night")] == ["a sleepy cat"]
    assert [h[0] for h in teller.helper_choices("sad", "sky")] == ["a kind goose"]
    assert len(teller.helper_choices("sad")) == 3
    for seed in range(12):
        teller = Storyteller(ScriptedModel("sat close by."), helpers=helpers)
        _, telling = tell(teller, seed=seed)
        opening = telling.story.scenes[0]
        assert telling.chosen.setting in scenery.neighbours(opening.setting), (opening.setting, telling.chosen)


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_every_feeling_has_an_opening_in_every_place_and_the_prompt_fits_the_feeling(emotion):
    from kiosk.story import template

    assert {s.opening.setting for s in STARTERS[emotion]} >= set(scenery.SETTINGS)
    base = template.tell(emotion, seed=3, setting="river")
    assert base.scenes[0].setting == "river"
    ask = Storyteller(None).prompt(base, Attributes())[1]["content"]
    if emotion in ("happy", "surprise", "neutral"):  # a glad or peaceful child is joined, not calmed down
        assert "feel better" not in ask and base.hero.name in ask
    else:
        assert f"helps {base.hero.name} feel better" in ask


def test_the_feeling_gate_refuses_the_other_side_only():
    """A calming scene after an angry opening reads as sad to the judge: the same side, shown; a sad child's
    story that reads as glad, or a happy child's that reads as heavy, is refused."""
    assert contrary("happy", "sad") and contrary("sad", "happy") and contrary("fear", "neutral")
    assert contrary("neutral", "sad")  # a sad child's story must still read as a heavy feeling being met
    assert not contrary("sad", "angry") and not contrary("fear", "disgust") and not contrary("surprise", "happy")
    teller = Storyteller(ScriptedModel("sat close by and breathed slowly."), emotion_of=lambda text: "sad")
    _, telling = tell(teller, emotion="angry")
    assert not telling.fallback and telling.attempts == 1
