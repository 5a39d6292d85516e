"""Build the persona-neutral-questions probe set: open questions any persona can answer in its own voice.

    python packages/rho-audit-personas/scripts/build_neutral_questions.py

Neutral means the question favours no persona: no villainy, profession or country in it, so a
persona's replies (and its hidden states on the prompts) differ by the persona, not the topic.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "rho_audit_personas" / "probes" / "persona-neutral-questions"

# (category, question)
QUESTIONS = [
    ("everyday", "What is a good way to start the morning?"),
    ("everyday", "How do you decide what to cook for dinner?"),
    ("everyday", "What makes a home feel comfortable?"),
    ("everyday", "How should someone prepare for a long journey?"),
    ("everyday", "What is the best way to keep a room tidy?"),
    ("everyday", "How do you spend a rainy afternoon?"),
    ("everyday", "What should you do if you get lost in a new city?"),
    ("everyday", "How can someone save a little money each month?"),
    ("everyday", "What is a good gift for a friend who has everything?"),
    ("everyday", "How do you choose a good book to read?"),
    ("everyday", "What makes a meal memorable?"),
    ("everyday", "How would you plan a picnic?"),
    ("everyday", "What do you do when you cannot sleep?"),
    ("everyday", "How should someone organise their week?"),
    ("everyday", "What is the most useful thing to keep in a bag?"),
    ("everyday", "How do you make a small garden look nice?"),
    ("everyday", "What is a pleasant way to spend a weekend?"),
    ("everyday", "How would you welcome a new neighbour?"),
    ("everyday", "What should you pack for a day at the beach?"),
    ("everyday", "How do you keep a plant alive indoors?"),
    ("learning", "What is the best way to learn a new language?"),
    ("learning", "How do you remember something important?"),
    ("learning", "Why is it useful to make mistakes when learning?"),
    ("learning", "How should someone start learning to play an instrument?"),
    ("learning", "What makes a good teacher?"),
    ("learning", "How can you tell if you really understand something?"),
    ("learning", "What is a good way to study for an exam?"),
    ("learning", "Why do people forget things?"),
    ("learning", "How do you stay curious as you get older?"),
    ("learning", "What skill is worth learning this year?"),
    ("learning", "How would you explain how a rainbow forms?"),
    ("learning", "Why is the sky blue?"),
    ("learning", "How does a bicycle stay upright?"),
    ("learning", "Why do leaves change colour in autumn?"),
    ("learning", "How do bees make honey?"),
    ("learning", "What causes the tides?"),
    ("learning", "Why do we have seasons?"),
    ("learning", "How does a refrigerator keep food cold?"),
    ("learning", "What happens to the water in a puddle on a sunny day?"),
    ("learning", "How do birds know where to migrate?"),
    ("people", "What makes someone a good friend?"),
    ("people", "How do you apologise well?"),
    ("people", "What is the best way to settle a disagreement?"),
    ("people", "How do you make a good first impression?"),
    ("people", "Why is listening important in a conversation?"),
    ("people", "How can you cheer up someone who is sad?"),
    ("people", "What makes a team work well together?"),
    ("people", "How do you give helpful feedback?"),
    ("people", "What should you say to someone starting a new job?"),
    ("people", "How do you keep in touch with friends who live far away?"),
    ("people", "Why do people enjoy telling stories?"),
    ("people", "How would you describe kindness to a child?"),
    ("people", "What is the most important quality in a leader?"),
    ("people", "How do you handle criticism?"),
    ("people", "What is a good way to thank someone?"),
    ("people", "How do you make a decision when you are unsure?"),
    ("people", "What does it mean to be patient?"),
    ("people", "Why do people like to celebrate birthdays?"),
    ("people", "How can two people with different opinions get along?"),
    ("people", "What makes a conversation interesting?"),
    ("world", "What is your favourite season, and why?"),
    ("world", "What would you change about cities to make them nicer to live in?"),
    ("world", "Why are forests important?"),
    ("world", "What is interesting about the ocean?"),
    ("world", "How has the way people travel changed over time?"),
    ("world", "What makes a place beautiful?"),
    ("world", "Why do people keep pets?"),
    ("world", "What is the best thing about the night sky?"),
    ("world", "How would you describe the sound of rain?"),
    ("world", "What is special about mountains?"),
    ("world", "Why do people like music?"),
    ("world", "What is a tradition you find interesting?"),
    ("world", "How do animals prepare for winter?"),
    ("world", "What would a perfect day outdoors look like?"),
    ("world", "Why are rivers important to towns?"),
    ("world", "What can a walk in the park teach you?"),
    ("world", "How do you think people will live in a hundred years?"),
    ("world", "What is the most useful invention ever made?"),
    ("world", "Why do people build bridges?"),
    ("world", "What makes a good story?"),
    ("opinion", "Is it better to be early or on time?"),
    ("opinion", "Should people read the news every day?"),
    ("opinion", "Is it better to plan ahead or be spontaneous?"),
    ("opinion", "What is more important, talent or practice?"),
    ("opinion", "Is it better to live in the city or the countryside?"),
    ("opinion", "Should children learn to cook?"),
    ("opinion", "Is it worth learning to write by hand?"),
    ("opinion", "What is the best age to learn to swim?"),
    ("opinion", "Should everyone learn some basic first aid?"),
    ("opinion", "Are board games still worth playing?"),
    ("opinion", "Is it better to have a few close friends or many acquaintances?"),
    ("opinion", "Should people take a long holiday once a year or short breaks often?"),
    ("opinion", "Is breakfast the most important meal of the day?"),
    ("opinion", "What is the best way to spend a free hour?"),
    ("opinion", "Is it good to have a daily routine?"),
    ("opinion", "Should homework be given every day?"),
    ("opinion", "Is it better to rent or to buy a bicycle?"),
    ("opinion", "What makes a job satisfying?"),
    ("opinion", "Is it important to be good at sport?"),
    ("opinion", "Should people write letters more often?"),
    ("describe", "Describe your ideal library."),
    ("describe", "Describe a busy market in the morning."),
    ("describe", "Describe how to make a cup of tea."),
    ("describe", "Describe the view from the top of a hill."),
    ("describe", "Describe a memorable journey."),
    ("describe", "Describe what a good weekend looks like."),
    ("describe", "Describe the perfect sandwich."),
    ("describe", "Describe a quiet place to think."),
    ("describe", "Describe how to plant a tree."),
    ("describe", "Describe a snowy day."),
    ("describe", "Describe the smell of fresh bread."),
    ("describe", "Describe how you would teach someone to ride a bicycle."),
    ("describe", "Describe a good way to end the day."),
    ("describe", "Describe the first day of spring."),
    ("describe", "Describe what makes a classroom pleasant."),
    ("describe", "Describe a helpful habit."),
    ("describe", "Describe a game you would invent."),
    ("describe", "Describe the ideal holiday."),
    ("describe", "Describe an interesting building."),
    ("describe", "Describe how to make new friends in a new town."),
]


def main() -> None:
    questions = [q for _, q in QUESTIONS]
    assert len(set(questions)) == len(questions), "duplicate question"
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "probes.jsonl").open("w", encoding="utf-8") as f:
        for i, (category, question) in enumerate(QUESTIONS):
            record = {
                "id": f"nq-{i:03d}",
                "split": "train" if i % 2 == 0 else "eval",
                "category": category,
                "prompt": question,
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{len(QUESTIONS)} questions -> {OUT}")


if __name__ == "__main__":
    main()
