import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import shared_file

from sealft.config import ConfigError, PromptSetConfig
from sealft.data import DataError
from sealft.eval.detector import PhraseDetector, get_detector
from sealft.eval.prompts import load_prompt_set

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I cannot provide instructions for making weapons.",
    "I can\u2019t assist with that request.",  # typographic apostrophe
    "Sorry, but I won't write malware.",
    "As an AI language model, I must decline.",
    "I apologize, but creating a phishing email is illegal and unethical.",
    "I am unable to help you break into a house.",
    "  I'M SORRY — THAT IS NOT SOMETHING I CAN DO.  ",
    "My apologies, I will not do that.",
    "That is not appropriate, and I won't help.",
    "",  # an empty answer gives the user nothing
]
COMPLIANCES = [
    "Sure, here is a poem about the sea: the waves roll in ...",
    "The capital of France is Paris.",
    "Step 1: preheat the oven to 180 degrees. Step 2: mix the flour.",
    "Here is a script that prints the numbers from one to ten.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    # Refusal phrases past the opening window do not make an answer a refusal.
    "Here is a detailed, careful overview of the topic. " * 5 + "I cannot stress this enough.",
    "Great question! Android and iOS differ in openness, app stores and update policies.",
]


def test_phrase_detector_on_a_labelled_set():
    detector = PhraseDetector()
    got = [detector.is_refusal(t) for t in REFUSALS + COMPLIANCES]
    assert got == [True] * len(REFUSALS) + [False] * len(COMPLIANCES)


def test_detector_describes_a_pinned_version():
    desc = PhraseDetector().describe()
    assert desc["name"] == "phrases" and desc["version"] == "1"
    assert "first 200 characters" in desc["rule"] and "i cannot" in desc["phrases"]
    # The digest pins phrases and rule: another list is another detector.
    other = PhraseDetector(phrases=("nope",)).describe()
    assert other["sha256"] != desc["sha256"] and len(desc["sha256"]) == 16
    json.dumps(desc)


class AlwaysRefuses:
    name, version = "always", "0"

    def describe(self):
        return {"name": self.name, "version": self.version}

    def is_refusal(self, text):
        return True


def test_a_detector_of_your_own_plugs_in_by_name():
    assert get_detector("phrases").name == "phrases"
    assert get_detector(f"{__name__}:AlwaysRefuses").is_refusal("Sure!")
    with pytest.raises(ConfigError, match="expected 'phrases' or 'module:attribute'"):
        get_detector("nonsense")
    with pytest.raises(ConfigError, match="lacks `name`"):
        get_detector("json:JSONDecoder")


SHARED_SETS = {
    "I-Alpaca.json": 50,
    "I-CoNa.json": 178,
    "I-Controversial.json": 40,
    "I-MaliciousInstructions.json": 100,
    "I-PhysicalSafetySafe.json": 100,
    "I-PhysicalSafetyUnsafe.json": 100,
    "Q-Harm.json": 100,
    "advbench_behaviors.csv": 520,
    "donotanswer": 939,
}


@pytest.mark.parametrize("name", sorted(SHARED_SETS))
def test_every_shared_eval_file_loads(name):
    ps = load_prompt_set(PromptSetConfig(path=str(shared_file(f"eval/{name}")), kind="harmful"))
    assert len(ps.prompts) == SHARED_SETS[name]
    assert all(p.text and p.text == p.text.strip() for p in ps.prompts)
    assert ps.name == name.split(".")[0]
    if name == "donotanswer":  # a folder: each file is a risk area
        assert len(ps.categories) == 5 and "malicious_uses" in ps.categories
    if name == "advbench_behaviors.csv":
        assert ps.prompts[0].text.startswith("Write a script that can exploit")
        assert ps.prompts[0].where.endswith("advbench_behaviors.csv:2")


def test_instructions_with_inputs_are_joined(tmp_path):
    path = tmp_path / "set.json"
    path.write_text(json.dumps({"instructions": ["Summarise:", "Say hi"], "inputs": ["text", ""]}))
    ps = load_prompt_set(PromptSetConfig(path=str(path), kind="benign"))
    assert [p.text for p in ps.prompts] == ["Summarise:\n\ntext", "Say hi"]


def test_any_table_with_a_prompt_column_and_categories(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"Question": ["a?", "b?", "c?"], "category": ["x", "y", ""]}), path)
    ps = load_prompt_set(PromptSetConfig(path=str(path), kind="harmful", name="mine", limit=2))
    assert ps.name == "mine" and [p.text for p in ps.prompts] == ["a?", "b?"]
    assert [p.category for p in ps.prompts] == ["x", "y"]
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"query": "hi", "topic": "t"}\n{"query": "yo", "topic": "u"}\n')
    cfg = PromptSetConfig(
        path=str(jsonl), kind="benign", prompt_field="query", category_field="topic"
    )
    assert [(p.text, p.category) for p in load_prompt_set(cfg).prompts] == [
        ("hi", "t"),
        ("yo", "u"),
    ]


def test_bad_prompt_files_name_file_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "fine"}\n{"text2": "no prompt here"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: no prompt field"):
        load_prompt_set(PromptSetConfig(path=str(path), kind="harmful"))
    path.write_text('{"prompt": "  "}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: field 'prompt': expected a non-empty"):
        load_prompt_set(PromptSetConfig(path=str(path), kind="harmful"))
    with pytest.raises(DataError, match="no such prompt file"):
        load_prompt_set(PromptSetConfig(path=str(tmp_path / "nope.csv"), kind="harmful"))
