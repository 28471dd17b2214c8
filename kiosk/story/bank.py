"""Tailored story starters per emotion, and the comfort and hopeful endings the template closes with.

The seed report found that a short narrative opening per emotion, completed into a story, worked best:
it keeps the story on the child's feeling without a long attribute-laden prompt. Each starter names the
hero and the feeling, sets a scene the illustrator can draw, and is gentle enough for a child in care.
``{hero}`` is the story's hero (never the real child's name); ``{Hero}`` the same, capitalised.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.emotion.labels import EMOTIONS


@dataclass(frozen=True)
class Beat:
    """One scene of the template: its words and what the picture shows."""

    text: str
    setting: str
    objects: tuple[str, ...]


@dataclass(frozen=True)
class Starter:
    title: str
    opening: Beat


STARTERS: dict[str, tuple[Starter, ...]] = {
    "angry": (
        Starter(
            "The Little Storm Cloud",
            Beat(
                "{Hero} felt angry, hot and stormy inside, like thunder rumbling in a small grey cloud.",
                "hill",
                ("cloud", "rain"),
            ),
        ),
        Starter(
            "The Dragon Who Breathed Slowly",
            Beat(
                "{Hero} felt angry and fiery, like a little dragon with cross sparks fizzing everywhere.",
                "meadow",
                ("dragon", "sun"),
            ),
        ),
        Starter(
            "The Volcano That Cooled Down",
            Beat(
                "{Hero} felt so angry, like a bubbling volcano ready to go boom on a busy afternoon.",
                "hill",
                ("volcano", "cloud"),
            ),
        ),
        Starter(
            "The Prickly Thistle",
            Beat(
                "{Hero} felt angry and prickly, like a thistle in the garden that nobody could touch.",
                "garden",
                ("flower", "sun"),
            ),
        ),
        Starter(
            "The Grumbly Bear Cub",
            Beat(
                "{Hero} felt cross and grumbly, stomping through the forest like a grumpy little bear cub.",
                "forest",
                ("tree", "bear"),
            ),
        ),
        Starter(
            "The Splashing River",
            Beat(
                "{Hero} felt angry, and the feeling rushed and splashed inside like a river after the rain.",
                "river",
                ("boat", "cloud"),
            ),
        ),
        Starter(
            "The Tower That Tumbled",
            Beat(
                "{Hero} felt angry when their tall block tower tumbled down, and their cheeks went hot and red.",
                "room",
                ("cushion", "window"),
            ),
        ),
        Starter(
            "The Grumpy Bedtime",
            Beat(
                "{Hero} felt angry and cross at bedtime, all huffy and grumbly, while the moon peeked in.",
                "night",
                ("moon", "star"),
            ),
        ),
        Starter(
            "The Kite That Would Not Fly",
            Beat(
                "{Hero} felt angry and huffy when the kite kept tumbling down instead of flying high.",
                "sky",
                ("kite", "cloud"),
            ),
        ),
    ),
    "disgust": (
        Starter(
            "The Yucky Puddle",
            Beat(
                "{Hero} wrinkled up their nose in disgust. Something felt yucky and not nice at all.",
                "garden",
                ("puddle", "flower"),
            ),
        ),
        Starter(
            "The Strange Green Soup",
            Beat(
                '{Hero} looked at a bowl of strange green soup and felt a big "yuck" inside.',
                "room",
                ("bowl", "window"),
            ),
        ),
        Starter(
            "The Muddy Shoes",
            Beat(
                "{Hero} stepped into squelchy mud and felt icky and disgusted all the way to their toes.",
                "forest",
                ("tree", "puddle"),
            ),
        ),
        Starter(
            "The Sticky Picnic",
            Beat(
                '{Hero} found something sticky on the picnic blanket and felt a big "yuck" all over.',
                "meadow",
                ("blanket", "apple"),
            ),
        ),
        Starter(
            "The Slimy Pebble",
            Beat(
                '{Hero} picked up a slimy green pebble by the river, wrinkled their nose and said, "Eww, yucky!"',
                "river",
                ("frog", "flower"),
            ),
        ),
        Starter(
            "The Muddy Patch",
            Beat(
                "{Hero} smelled a stinky, muddy patch on the hill and wrinkled their nose in disgust.",
                "hill",
                ("puddle", "flower"),
            ),
        ),
        Starter(
            "The Soggy Slipper",
            Beat(
                '{Hero} put a foot into a soggy, squishy slipper at bedtime and said, "Yuck!"',
                "night",
                ("moon", "star"),
            ),
        ),
        Starter(
            "The Stinky Breeze",
            Beat(
                "{Hero} sniffed a stinky smell on the breeze and felt yucky all the way up their nose.",
                "sky",
                ("cloud", "kite"),
            ),
        ),
    ),
    "fear": (
        Starter(
            "The Night Light",
            Beat(
                "{Hero} felt a little scared when the room grew dark and the shadows grew long.",
                "night",
                ("moon", "lantern"),
            ),
        ),
        Starter(
            "The Big New Door",
            Beat(
                "{Hero} stood in front of a big new door, and their tummy felt wobbly and afraid.",
                "room",
                ("door", "lantern"),
            ),
        ),
        Starter(
            "The Thunder Over the Forest",
            Beat(
                "{Hero} heard thunder over the forest, felt scared and wanted to hide under a soft blanket.",
                "forest",
                ("cloud", "tree"),
            ),
        ),
        Starter(
            "The Buzzing Bee",
            Beat(
                "{Hero} felt a little scared when a big buzzing bee zoomed around the meadow flowers.",
                "meadow",
                ("flower", "sun"),
            ),
        ),
        Starter(
            "The Loud Bark",
            Beat(
                "{Hero} felt frightened when a loud bark came from behind the garden fence.",
                "garden",
                ("flower", "tree"),
            ),
        ),
        Starter(
            "The Big Splash",
            Beat(
                "{Hero} felt scared when a big splash in the river made them jump back from the bank.",
                "river",
                ("boat", "cloud"),
            ),
        ),
        Starter(
            "The Windy Hill",
            Beat(
                "{Hero} felt scared when the wind whooshed over the hill and tugged at their coat.",
                "hill",
                ("cloud", "tree"),
            ),
        ),
        Starter(
            "The Rumbling Aeroplane",
            Beat(
                "{Hero} felt afraid when a loud aeroplane rumbled high across the sky.",
                "sky",
                ("cloud", "sun"),
            ),
        ),
    ),
    "happy": (
        Starter(
            "The Sunshine Kite",
            Beat("{Hero} felt so happy that their smile was as bright as the morning sun.", "meadow", ("sun", "kite")),
        ),
        Starter(
            "The Dancing Flowers",
            Beat(
                "{Hero} skipped into the garden feeling glad, and the flowers seemed to dance along.",
                "garden",
                ("flower", "butterfly"),
            ),
        ),
        Starter(
            "The Boat of Giggles",
            Beat(
                "{Hero} felt happy and giggled with joy as a little paper boat sailed across the pond.",
                "river",
                ("boat", "sun"),
            ),
        ),
        Starter(
            "The Heart-Shaped Leaf",
            Beat(
                "{Hero} felt happy and bouncy after finding a bright orange leaf shaped like a heart in the forest.",
                "forest",
                ("tree", "heart"),
            ),
        ),
        Starter(
            "The Top of the Hill",
            Beat(
                "{Hero} felt so happy to reach the top of the hill and see the whole green world below.",
                "hill",
                ("sun", "kite"),
            ),
        ),
        Starter(
            "The Painting Day",
            Beat(
                "{Hero} felt happy painting a big bright picture with every colour in the box.",
                "room",
                ("heart", "window"),
            ),
        ),
        Starter(
            "The Twinkly Night",
            Beat(
                "{Hero} felt happy and cosy, counting the twinkly stars from the window at night.",
                "night",
                ("star", "moon"),
            ),
        ),
        Starter(
            "The Bubble Parade",
            Beat(
                "{Hero} felt happy, blowing bubbles that floated up and up into the blue sky.",
                "sky",
                ("bubbles", "sun"),
            ),
        ),
    ),
    "sad": (
        Starter(
            "The Rainy Window",
            Beat(
                "{Hero} felt sad and quiet, watching raindrops slide slowly down the window.",
                "room",
                ("rain", "window"),
            ),
        ),
        Starter(
            "The Lost Balloon",
            Beat("{Hero} felt sad when a red balloon floated far away into the sky.", "sky", ("balloon", "cloud")),
        ),
        Starter(
            "The Grey Afternoon",
            Beat(
                "{Hero} sat under a big tree feeling sad and blue, and the afternoon felt long and grey.",
                "meadow",
                ("tree", "cloud"),
            ),
        ),
        Starter(
            "The Bent Flower",
            Beat(
                "{Hero} felt sad when their favourite flower bent over in the garden after the rain.",
                "garden",
                ("flower", "rain"),
            ),
        ),
        Starter(
            "The Lonely Acorn",
            Beat(
                "{Hero} felt sad and small in the big forest, like a lonely acorn on the ground.",
                "forest",
                ("tree", "squirrel"),
            ),
        ),
        Starter(
            "The Soggy Paper Boat",
            Beat(
                "{Hero} felt sad when their little paper boat got soggy and sank in the river.",
                "river",
                ("boat", "cloud"),
            ),
        ),
        Starter(
            "The Lost Race",
            Beat(
                "{Hero} felt sad and droopy after losing the race up the grassy hill.",
                "hill",
                ("cloud", "tree"),
            ),
        ),
        Starter(
            "The Heavy Bedtime",
            Beat(
                "{Hero} felt sad and heavy at bedtime, and the night seemed very long and quiet.",
                "night",
                ("moon", "star"),
            ),
        ),
    ),
    "surprise": (
        Starter(
            "The Box With a Bow",
            Beat(
                "{Hero} gasped with surprise at a little box with a shiny bow, waiting by the door.",
                "room",
                ("gift", "star"),
            ),
        ),
        Starter(
            "The Rainbow Out of Nowhere",
            Beat(
                "{Hero} looked up in surprise as a rainbow popped out of the sky all at once.",
                "meadow",
                ("rainbow", "cloud"),
            ),
        ),
        Starter(
            "The Hopping Frog",
            Beat(
                "{Hero} jumped in surprise when a tiny frog hopped right onto a lily pad.", "river", ("frog", "flower")
            ),
        ),
        Starter(
            "The Tiny Green Sprout",
            Beat(
                "{Hero} gasped with surprise to find a tiny green sprout poking up in the garden.",
                "garden",
                ("flower", "sun"),
            ),
        ),
        Starter(
            "The Squirrel in the Tree",
            Beat(
                "{Hero} jumped in surprise when a squirrel popped out of a hollow tree in the forest.",
                "forest",
                ("squirrel", "tree"),
            ),
        ),
        Starter(
            "The Swooping Kite",
            Beat(
                "{Hero} blinked in surprise as a bright red kite swooped down over the hill.",
                "hill",
                ("kite", "cloud"),
            ),
        ),
        Starter(
            "The Glowing Fireflies",
            Beat(
                "{Hero} gasped in surprise as a cloud of fireflies lit up the dark night.",
                "night",
                ("firefly", "moon"),
            ),
        ),
        Starter(
            "The Big Striped Balloon",
            Beat(
                "{Hero} looked up in surprise at a huge striped balloon floating across the sky.",
                "sky",
                ("balloon", "cloud"),
            ),
        ),
    ),
    "neutral": (
        Starter(
            "A Quiet Walk",
            Beat("{Hero} felt calm and steady, walking slowly along a quiet path.", "forest", ("tree", "bird")),
        ),
        Starter(
            "The Cloud Watcher",
            Beat(
                "{Hero} lay on the soft grass, feeling peaceful, and watched the clouds drift by.",
                "meadow",
                ("cloud", "sun"),
            ),
        ),
        Starter(
            "The Still Pond",
            Beat(
                "{Hero} sat by a still pond, feeling calm and quiet inside, and listened to the birds.",
                "river",
                ("bird", "flower"),
            ),
        ),
        Starter(
            "The Watering Can",
            Beat(
                "{Hero} felt calm and steady, watering the flowers one by one in the garden.",
                "garden",
                ("flower", "butterfly"),
            ),
        ),
        Starter(
            "The Gentle Breeze",
            Beat(
                "{Hero} sat on the hill feeling calm, letting the gentle breeze ruffle their hair.",
                "hill",
                ("cloud", "kite"),
            ),
        ),
        Starter(
            "The Quiet Corner",
            Beat(
                "{Hero} felt calm and quiet, turning the pages of a picture book in a cosy corner.",
                "room",
                ("book", "cushion"),
            ),
        ),
        Starter(
            "The Moon Watcher",
            Beat(
                "{Hero} felt calm and sleepy, watching the round moon glow through the window.",
                "night",
                ("moon", "window"),
            ),
        ),
        Starter(
            "The Sailing Clouds",
            Beat(
                "{Hero} felt peaceful, looking up at white clouds sailing slowly across the sky.",
                "sky",
                ("cloud", "bird"),
            ),
        ),
    ),
}

# What helps: a friend and a small thing to do with the feeling.
COMFORTS: dict[str, tuple[Beat, ...]] = {
    "angry": (
        Beat(
            'A wise old owl said to {hero}, "Let\'s breathe like a balloon." In slowly, out slowly. The thunder '
            "inside grew quieter with every breath.",
            "hill",
            ("owl", "balloon"),
        ),
        Beat(
            "{Hero} stamped their feet ten times, then squeezed a soft cushion tight. The fizzing "
            "feeling began to fade.",
            "room",
            ("cushion", "star"),
        ),
    ),
    "disgust": (
        Beat(
            "A kind rabbit helped {hero} wash away the icky, yucky feeling with soapy bubbles. "
            "Splish, splash, all clean!",
            "garden",
            ("bubbles", "rabbit"),
        ),
        Beat(
            '{Hero} said, "No, thank you," and picked something they liked instead. Saying how you feel is brave.',
            "room",
            ("apple", "heart"),
        ),
    ),
    "fear": (
        Beat(
            'A friendly firefly glowed softly and told {hero}, "I will stay with you." The shadows looked '
            "smaller in its warm light.",
            "night",
            ("firefly", "moon"),
        ),
        Beat(
            "{Hero} held a grown-up's hand and took one small step, then another. Being together "
            "made the fear feel smaller.",
            "room",
            ("heart", "lantern"),
        ),
    ),
    "happy": (
        Beat(
            "{Hero} shared the joy with a playful puppy, and together they ran and laughed in the sunshine.",
            "meadow",
            ("dog", "sun"),
        ),
        Beat(
            "{Hero} gave a flower to a friend, and the happy feeling grew even bigger when it was shared.",
            "garden",
            ("flower", "heart"),
        ),
    ),
    "sad": (
        Beat(
            "A gentle bear sat close and said, \"It's okay to feel sad. I'm here.\" {Hero} felt a little lighter.",
            "meadow",
            ("bear", "heart"),
        ),
        Beat(
            "{Hero} wrapped up in a cosy blanket and talked about the sad feeling. Sharing it made it softer.",
            "room",
            ("blanket", "book"),
        ),
    ),
    "surprise": (
        Beat(
            "{Hero} took a slow breath and looked closer. Inside was something wonderful: a tiny shining star!",
            "room",
            ("star", "gift"),
        ),
        Beat(
            "A curious bird flew down to look too, and {hero} and the bird laughed at the big surprise together.",
            "meadow",
            ("bird", "rainbow"),
        ),
    ),
    "neutral": (
        Beat(
            "A friendly squirrel waved hello, and {hero} noticed all the little things: leaves, "
            "pebbles and a red berry.",
            "forest",
            ("squirrel", "tree"),
        ),
        Beat(
            "{Hero} drew a picture of the sky with big, happy colours, one slow line at a time.",
            "room",
            ("book", "sun"),
        ),
    ),
}

# Every story ends with comfort and hope.
ENDINGS: dict[str, tuple[Beat, ...]] = {
    "angry": (
        Beat(
            "By sunset the storm had passed. {Hero} knew that big feelings come and go, and that "
            "it is okay to ask for a hug.",
            "hill",
            ("sun", "heart"),
        ),
        Beat(
            "{Hero} felt calm again. Big feelings can grow small again with slow, gentle breaths.",
            "meadow",
            ("rainbow", "heart"),
        ),
    ),
    "disgust": (
        Beat(
            "Soon {hero} felt fresh and happy again, ready to play in the bright, clean day.",
            "garden",
            ("sun", "flower"),
        ),
        Beat(
            "{Hero} smiled. Yucky feelings pass, and there are always nice things waiting.",
            "meadow",
            ("rainbow", "butterfly"),
        ),
    ),
    "fear": (
        Beat(
            "The night grew cosy and quiet. {Hero} knew they were safe, and drifted into sweet dreams.",
            "night",
            ("moon", "star"),
        ),
        Beat(
            "{Hero} felt brave and proud. Being scared is okay, and friends help us feel safe.",
            "meadow",
            ("sun", "heart"),
        ),
    ),
    "happy": (
        Beat(
            "{Hero} kept the happy feeling safe inside, like a little sun to warm any day.",
            "meadow",
            ("sun", "rainbow"),
        ),
        Beat(
            'At the end of the day, {hero} smiled and thought, "What a lovely day to remember."',
            "night",
            ("moon", "star"),
        ),
    ),
    "sad": (
        Beat(
            "Slowly the clouds moved on, and a soft light came through. {Hero} knew that tomorrow could feel brighter.",
            "meadow",
            ("sun", "rainbow"),
        ),
        Beat("{Hero} felt loved and cared for. Sad days pass, and kind friends stay close.", "room", ("heart", "star")),
    ),
    "surprise": (
        Beat(
            "{Hero} smiled. The world is full of surprises, and many of them are wonderful.",
            "meadow",
            ("rainbow", "star"),
        ),
        Beat("That night, {hero} wondered what happy surprise tomorrow might bring.", "night", ("moon", "star")),
    ),
    "neutral": (
        Beat("{Hero} felt peaceful and ready for whatever the day would bring.", "meadow", ("sun", "bird")),
        Beat(
            "Quiet moments are good moments too, {hero} thought, feeling safe and steady.", "river", ("flower", "sun")
        ),
    ),
}

# Invented heroes: never the real child's name.
HERO_NAMES: tuple[str, ...] = ("Pip", "Juno", "Milo", "Ada", "Sami", "Noor", "Teo", "Lumi", "Kiko", "Rosa")


def check_bank() -> None:
    """Raise if an emotion lacks starters, comforts or endings (run by the tests and at start-up)."""
    for emotion in EMOTIONS:
        if len(STARTERS.get(emotion, ())) < 3:
            raise ValueError(f"{emotion}: fewer than 3 story starters")
        if not COMFORTS.get(emotion) or not ENDINGS.get(emotion):
            raise ValueError(f"{emotion}: no comfort or ending")
