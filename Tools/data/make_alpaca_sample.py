#!/usr/bin/env python3
"""A small Alpaca-format instruction set for `cpiscope criticality`: Probes/ift/alpaca-sample.json.

What: 300 rows {"instruction", "input", "output"} in the layout of the published alpaca_data.json (a JSON
array, 4-space indent), written for this project from the hand-written lists below, 100 of each kind:
  context-critical    the input carries new information the answer depends on: invented companies,
                      invented people, invented places/rules/events (counterfactual "in this story" facts)
                      and short passages with a question or a task (summarise, extract, count, list);
  context-redundant   the input restates a well-known fact (capitals, authors, chemistry, physics,
                      geography/astronomy) that the answer could also come from memory;
  no-context          the input is "" (general instructions: write, list, explain, convert, compute).
Why: Goyal, Baek et al. (section 3.4) score IFT examples by the perplexity of the response without the
context; a sample with known kinds lets one see whether criticality separates the first two kinds
(docs/criticality.md, Probes/ift/README.md). Nothing here is copied from Alpaca or any other dataset.

How: every name, fact and phrasing is a literal in this file; a random.Random(SEED) picks combinations,
numbers and phrasings, and shuffles the 300 rows. Output is byte-for-byte reproducible: UTF-8,
json.dumps(indent=4, ensure_ascii=False), one trailing newline.

Rerun (from the repository root): python3 Tools/data/make_alpaca_sample.py
  (standard library only; --check compares with the committed file instead of writing it; --kinds prints
  the kind of every row, "a", "b" or "c", as a JSON array in file order)
"""
import json
import os
import random
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "Probes", "ift", "alpaca-sample.json")
SEED = 20250611

# ----------------------------------------------------------------------------------------------------
# (a) context-critical material: invented entities (none of these companies, people or towns exist).

COMPANY_A = ["Brindle", "Quillmoor", "Ostrava", "Pellwick", "Tamsin", "Varrow", "Hollin", "Cressent",
             "Marrowby", "Oakhurst", "Feldane", "Luminar", "Grisby", "Wenlow", "Torvale", "Ashcombe",
             "Nettlefield", "Kestrel", "Duvane", "Larkspur"]
COMPANY_B = ["Ceramics", "Robotics", "Textiles", "Analytics", "Bakeries", "Shipping", "Optics", "Instruments",
             "Biolabs", "Furniture", "Software", "Paper Mills"]
PRODUCTS = {
    "Ceramics": ["glazed teapots", "frost-proof garden tiles", "hand-thrown mugs"],
    "Robotics": ["warehouse sorting arms", "pool-cleaning robots", "crop-inspection drones"],
    "Textiles": ["recycled wool blankets", "waterproof canvas", "linen shirts"],
    "Analytics": ["weather forecasting dashboards", "retail footfall reports", "energy-use audits"],
    "Bakeries": ["rye sourdough", "almond croissants", "seeded flatbreads"],
    "Shipping": ["refrigerated river barges", "same-day parcel routes", "container leasing"],
    "Optics": ["microscope lenses", "telescope mirrors", "laser levels"],
    "Instruments": ["student violins", "brass trumpets", "digital metronomes"],
    "Biolabs": ["soil-testing kits", "enzyme cleaners", "plant vaccines"],
    "Furniture": ["folding desks", "oak bookcases", "rocking chairs"],
    "Software": ["scheduling apps", "invoice tools", "library catalogue systems"],
    "Paper Mills": ["watercolour paper", "recycled cardboard", "archival envelopes"],
}
FIRST = ["Maren", "Tobias", "Ilse", "Corwin", "Anouk", "Dario", "Yelena", "Fenwick", "Saoirse", "Bertil",
         "Odalys", "Kasimir", "Priya", "Lucan", "Wilhelmina", "Jovan", "Thandi", "Ewart", "Noor", "Rafferty",
         "Zofia", "Idris", "Maelle", "Osric"]
LAST = ["Halloran", "Quist", "Vennick", "Ashgrove", "Delacroix-Moe", "Strand", "Okonkwo-Reyes", "Tallis",
        "Brannigan", "Fairweather", "Lindqvist", "Moravec", "Pemberly", "Castellane", "Oduya", "Whitlock",
        "Sørbye", "Marchetti", "Kowalczyk", "Ferreira-Hale"]
TOWNS = ["Eldermoor", "Port Saverne", "Kilbride Falls", "Nyholm", "Castra Vell", "Lowen Bay", "Ostmark",
         "Thistleford", "Marrow Cross", "San Aurelio", "Hvalby", "Dunmere", "Ravenglass Point", "Zell am Tarn"]
PROFESSIONS = [("marine biologist", "mapping kelp forests along the northern coast"),
               ("architect", "designing a library built entirely from reclaimed timber"),
               ("violinist", "recording all of the island's folk songs"),
               ("chef", "opening a restaurant that serves only foraged food"),
               ("astronomer", "discovering a comet that now bears the town's name"),
               ("civil engineer", "building a bridge that floats on pontoons"),
               ("novelist", "writing a twelve-book series about lighthouse keepers"),
               ("beekeeper", "breeding a bee that survives cold winters"),
               ("cartographer", "drawing the first complete map of the cave system"),
               ("glassblower", "making a chandelier with ten thousand pieces")]

# Invented worlds and rules: the answer holds only inside the passage.
COUNTERFACTUAL = [
    ("In the novel, the island nation of Velmora has three suns, and its calendar counts a day as the time "
     "between two rises of the smallest sun.", "How many suns does Velmora have in the novel?", "Three."),
    ("In the game's world, water freezes at 40 degrees and boils at 140 degrees on the Tessaly scale.",
     "At what temperature does water boil on the Tessaly scale?", "140 degrees."),
    ("In this story, the capital of the Republic of Ardenne is the harbour city of Morlaix-sur-Vent, chosen "
     "in 1802 because it had the only deep-water port.", "What is the capital of the Republic of Ardenne?",
     "Morlaix-sur-Vent."),
    ("The rules of Quadball state that a team scores two points for a ground goal and five points for a "
     "volley goal, and a match lasts four quarters of nine minutes.",
     "How long does a match of Quadball last?", "Thirty-six minutes: four quarters of nine minutes each."),
    ("On the planet Tirel, the year has 412 days and is divided into eight seasons of equal length.",
     "How many days are in each season on Tirel?", "Each season on Tirel has 51.5 days."),
    ("In the Kingdom of Osk, the currency is the feather; one gold feather is worth twelve copper feathers.",
     "How many copper feathers equal three gold feathers?", "Thirty-six copper feathers."),
    ("According to the club's new rules, members may borrow up to seven books at once, but only two of them "
     "may be reference books.", "How many reference books can a member borrow at once?", "Two."),
    ("In the film, the robot Pell-9 can only speak on Tuesdays and communicates with coloured lights on all "
     "other days.", "How does Pell-9 communicate on a Wednesday?", "With coloured lights."),
    ("In the alternate history, the first person to reach the South Pole was the cook Agathe Lune, in 1897, "
     "travelling with a team of reindeer.", "Who first reached the South Pole in the alternate history?",
     "Agathe Lune, a cook, in 1897."),
    ("The recipe for Marrow Cross stew uses four turnips, two leeks, one cup of barley and a spoon of "
     "smoked salt, simmered for three hours.", "List the ingredients of Marrow Cross stew.",
     "Four turnips, two leeks, one cup of barley and a spoon of smoked salt."),
    ("In this fictional universe, light travels at exactly 1,000 kilometres per second.",
     "How far does light travel in five seconds in this universe?", "5,000 kilometres."),
    ("The museum is open from 10:00 to 16:00 on weekdays and from 12:00 to 20:00 on Saturdays; it is closed "
     "on Sundays.", "When does the museum close on Saturdays?", "At 20:00."),
    ("In the story, the river Hale flows uphill every full moon, carrying boats from the sea back to the "
     "mountain villages.", "What happens to the river Hale every full moon in the story?",
     "It flows uphill, carrying boats from the sea back to the mountain villages."),
    ("The festival of Lanterns in Nyholm takes place on the third Friday of October; each family floats one "
     "paper lantern per child on the harbour.", "How many lanterns does a family with four children float?",
     "Four."),
    ("In the school's grading system, an A is 90 points or more, a B is 75 to 89, a C is 60 to 74, and "
     "anything below 60 must be retaken.", "What grade does a score of 78 receive?", "B."),
    ("In the tabletop game, a knight moves exactly three squares in a straight line and may jump over one "
     "piece per turn.", "How many squares does a knight move in the tabletop game?", "Exactly three."),
    ("The Eldermoor ferry leaves every 40 minutes, starting at 06:20, and the crossing takes 25 minutes.",
     "If you take the second ferry of the day, when do you arrive?", "At 07:25."),
    ("In this fairy tale, the dragon Ombrel guards not gold but a library of ten thousand unread letters.",
     "What does the dragon Ombrel guard?", "A library of ten thousand unread letters."),
    ("The town council of Dunmere voted 7 to 4 to turn the old railway station into a public swimming pool, "
     "which will open in spring.", "Summarise the decision in one sentence.",
     "Dunmere's council voted 7 to 4 to convert the old railway station into a public swimming pool opening "
     "in spring."),
    ("In the imagined language Teshi, 'mor' means water, 'vel' means bright, and adjectives follow nouns.",
     "How would you say 'bright water' in Teshi?", "Mor vel."),
]

# Longer invented passages with a task whose answer is a longer text.
PASSAGES = [
    ("The Thistleford Water Board met on 3 March. It approved a new reservoir north of the town, to be "
     "finished in four years at a cost of 18 million crowns. Residents raised concerns about the loss of "
     "farmland, and the board promised to replant an equal area of woodland. Water bills will rise by six "
     "percent from next year to pay for the work.",
     "Summarise the meeting for a local newsletter.",
     "On 3 March the Thistleford Water Board approved a reservoir north of the town, costing 18 million "
     "crowns and taking four years to build. To answer residents' worries about lost farmland, it promised "
     "to replant the same area as woodland. Water bills will rise by six percent next year."),
    ("Captain Ysolde Marchetti's logbook, day 12: the wind turned east at dawn. We lost the foremast in the "
     "squall but saved the cargo of tea. Two sailors, Brannock and Tey, were hurt. We will put in at Port "
     "Saverne for repairs, about three days away if the weather holds.",
     "Extract the facts from the logbook entry as a bulleted list.",
     "- Day 12 of the voyage\n- Wind turned east at dawn\n- Foremast lost in a squall\n- Cargo of tea saved\n"
     "- Sailors Brannock and Tey injured\n- Heading to Port Saverne for repairs, about three days away"),
    ("The Hvalby Robotics League has three divisions. Junior teams build robots under 2 kilograms, senior "
     "teams robots under 10 kilograms, and the open division has no weight limit but requires a safety "
     "inspection before every match. This year 46 teams entered: 20 junior, 17 senior and 9 open.",
     "Explain the divisions of the league and how many teams entered each.",
     "The league has a junior division for robots under 2 kilograms (20 teams), a senior division for robots "
     "under 10 kilograms (17 teams), and an open division without a weight limit, where every robot is "
     "inspected for safety before each match (9 teams). In total 46 teams entered."),
    ("Lowen Bay's bakery, run by Noor Ashgrove, sells three breads: a rye loaf at 4 crowns, a seeded "
     "flatbread at 2 crowns and a honey brioche at 5 crowns. On Saturdays every third loaf is free.",
     "A customer buys three rye loaves on a Saturday. How much do they pay, and why?",
     "They pay 8 crowns. A rye loaf costs 4 crowns, and on Saturdays every third loaf is free, so only two "
     "of the three loaves are charged."),
]

# ----------------------------------------------------------------------------------------------------
# (b) context-redundant material: well-known facts, stated in the input.

CAPITALS = [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Japan", "Tokyo"), ("China", "Beijing"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
            ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Brazil", "Brasília"),
            ("Argentina", "Buenos Aires"), ("Russia", "Moscow"), ("India", "New Delhi"),
            ("Portugal", "Lisbon"), ("Greece", "Athens"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
            ("Finland", "Helsinki"), ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Ireland", "Dublin"),
            ("Peru", "Lima"), ("Thailand", "Bangkok"), ("South Korea", "Seoul"), ("Turkey", "Ankara"),
            ("Hungary", "Budapest"), ("Denmark", "Copenhagen"), ("Colombia", "Bogotá"),
            ("New Zealand", "Wellington"), ("Cuba", "Havana"), ("Morocco", "Rabat")]
AUTHORS = [("Pride and Prejudice", "Jane Austen"), ("Nineteen Eighty-Four", "George Orwell"),
           ("Hamlet", "William Shakespeare"), ("War and Peace", "Leo Tolstoy"),
           ("Don Quixote", "Miguel de Cervantes"), ("Moby-Dick", "Herman Melville"),
           ("Crime and Punishment", "Fyodor Dostoevsky"),
           ("One Hundred Years of Solitude", "Gabriel García Márquez"),
           ("The Divine Comedy", "Dante Alighieri"), ("Frankenstein", "Mary Shelley"),
           ("The Great Gatsby", "F. Scott Fitzgerald"), ("Les Misérables", "Victor Hugo"),
           ("Jane Eyre", "Charlotte Brontë"), ("Wuthering Heights", "Emily Brontë"),
           ("The Old Man and the Sea", "Ernest Hemingway"), ("Great Expectations", "Charles Dickens"),
           ("Ulysses", "James Joyce"), ("Macbeth", "William Shakespeare")]
# (statement, instruction, output)
SCIENCE = [
    ("The chemical symbol for gold is Au, from the Latin word aurum.", "What is the chemical symbol for gold?",
     "Au"),
    ("Sodium has the chemical symbol Na.", "What is the chemical symbol of sodium?", "Na"),
    ("Iron is represented by the symbol Fe.", "Which symbol represents iron?", "Fe, from the Latin ferrum."),
    ("Silver has the symbol Ag.", "Give the chemical symbol for silver.", "Ag"),
    ("A water molecule consists of two hydrogen atoms and one oxygen atom, so its formula is H2O.",
     "What is the chemical formula of water?", "H2O: two hydrogen atoms bonded to one oxygen atom."),
    ("Table salt is sodium chloride, NaCl.", "What is the chemical name of table salt?", "Sodium chloride (NaCl)."),
    ("Carbon dioxide has the formula CO2.", "What is the formula of carbon dioxide?", "CO2"),
    ("Hydrogen is the first element of the periodic table, with atomic number 1.",
     "What is the atomic number of hydrogen?", "1"),
    ("Carbon has atomic number 6.", "What is the atomic number of carbon?", "Carbon's atomic number is 6."),
    ("Oxygen has atomic number 8.", "What is the atomic number of oxygen?", "8"),
    ("Pure water has a pH of 7 at 25 °C, which is neutral.", "What is the pH of pure water at 25 °C?",
     "7, which is neutral."),
    ("Helium, neon and argon are noble gases.", "Name two noble gases.", "Helium and neon."),
    ("At sea level, water boils at 100 °C.", "At what temperature does water boil at sea level?", "100 °C."),
    ("Water freezes at 0 °C under standard pressure.", "At what temperature does water freeze?", "0 °C."),
    ("The SI unit of force is the newton.", "What is the SI unit of force?", "The newton."),
    ("Electrical resistance is measured in ohms.", "In what unit is electrical resistance measured?", "Ohms."),
    ("The watt is the SI unit of power.", "What is the SI unit of power?", "The watt."),
    ("Light travels through a vacuum at about 300,000 kilometres per second.",
     "Roughly how fast does light travel in a vacuum?", "About 300,000 kilometres per second."),
    ("Near the Earth's surface, objects accelerate downwards at about 9.8 metres per second squared.",
     "What is the approximate acceleration due to gravity at the Earth's surface?",
     "About 9.8 metres per second squared."),
    ("Absolute zero is −273.15 °C, or 0 kelvin.", "What is absolute zero in degrees Celsius?", "−273.15 °C."),
    ("Sound travels faster in water than in air.", "Does sound travel faster in water or in air?",
     "In water."),
    ("Plants take in carbon dioxide and release oxygen during photosynthesis.",
     "Which gas do plants release during photosynthesis?", "Oxygen."),
    ("Jupiter is the largest planet in the Solar System.", "Which is the largest planet in the Solar System?",
     "Jupiter."),
    ("Mercury is the planet closest to the Sun.", "Which planet is closest to the Sun?", "Mercury."),
    ("Mars is often called the Red Planet because of the iron oxide on its surface.",
     "Which planet is known as the Red Planet, and why?",
     "Mars, because iron oxide on its surface gives it a reddish colour."),
    ("The Pacific is the largest and deepest ocean on Earth.", "What is the largest ocean on Earth?",
     "The Pacific Ocean."),
    ("Mount Everest, on the border of Nepal and China, is the highest mountain above sea level.",
     "What is the highest mountain above sea level?", "Mount Everest."),
    ("The Earth takes about 365.25 days to orbit the Sun.", "How long does the Earth take to orbit the Sun?",
     "About 365.25 days, which is why a leap day is added every four years."),
    ("The Moon is the Earth's only natural satellite.", "What is the Earth's only natural satellite?",
     "The Moon."),
    ("The human heart has four chambers: two atria and two ventricles.",
     "How many chambers does the human heart have?", "Four: two atria and two ventricles."),
    ("The Sahara is the largest hot desert in the world.", "What is the largest hot desert in the world?",
     "The Sahara."),
    ("A triangle's interior angles add up to 180 degrees.", "What do the interior angles of a triangle add up to?",
     "180 degrees."),
]
CAPITAL_Q = ["What is the capital of {c}?", "Which city is the capital of {c}?", "Name the capital city of {c}.",
             "Tell me the capital of {c}."]
CAPITAL_CTX = ["{k} is the capital of {c}.", "The capital city of {c} is {k}.",
               "{k} is the capital and one of the best-known cities of {c}."]
CAPITAL_A = ["{k}.", "{k}", "The capital of {c} is {k}.", "{k} is the capital of {c}."]
AUTHOR_Q = ["Who wrote {w}?", "Who is the author of {w}?", "Name the writer of {w}."]
AUTHOR_CTX = ["{w} was written by {a}.", "{a} is the author of {w}.", "{w} is a famous work by {a}."]
AUTHOR_A = ["{a}.", "{a}", "{w} was written by {a}."]

# ----------------------------------------------------------------------------------------------------
# (c) no-context material.

LISTS = [
    ("List the three primary colours of paint.", "Red, yellow and blue."),
    ("Name the four seasons of the year.", "Spring, summer, autumn and winter."),
    ("List the days of the week, starting with Monday.",
     "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday."),
    ("Give three examples of mammals that live in the sea.", "Whales, dolphins and seals."),
    ("List four things to pack for a day of hiking.", "Water, a map, a rain jacket and snacks."),
    ("Name three instruments in a string quartet.", "Violin, viola and cello."),
    ("List five vegetables that grow underground.", "Carrots, potatoes, beetroot, radishes and onions."),
    ("Name three renewable sources of energy.", "Solar, wind and hydroelectric power."),
    ("List the planets of the Solar System in order from the Sun.",
     "Mercury, Venus, Earth, Mars, Jupiter, Saturn, Uranus, Neptune."),
    ("Suggest three names for a pet tortoise.", "Pebble, Sir Slowpoke and Juniper."),
    ("List three ways to save water at home.",
     "Take shorter showers, fix dripping taps, and run the dishwasher only when it is full."),
    ("Name the continents.", "Africa, Antarctica, Asia, Australia, Europe, North America and South America."),
    ("Give two synonyms for 'happy'.", "Cheerful and content."),
    ("Give the opposite of 'ancient'.", "Modern."),
    ("List the vowels of the English alphabet.", "A, E, I, O and U."),
    ("Name three board games that can be played by two people.", "Chess, draughts and backgammon."),
]
EXPLAIN = [
    ("Explain in one sentence what photosynthesis is.",
     "Photosynthesis is the process by which plants use sunlight, water and carbon dioxide to make sugar and "
     "release oxygen."),
    ("Explain why the sky looks blue.",
     "Sunlight is scattered by the molecules of the air, and shorter blue wavelengths are scattered much more "
     "than red ones, so blue light reaches our eyes from every direction of the sky."),
    ("What is a prime number?",
     "A whole number greater than one whose only divisors are one and itself, such as 2, 3, 5 or 7."),
    ("Explain the difference between weather and climate.",
     "Weather is the state of the atmosphere over hours or days; climate is the average pattern of weather "
     "in a region over many years."),
    ("Describe what a budget is and why it helps.",
     "A budget is a plan for how money will be earned and spent over a period. It helps you see where money "
     "goes, avoid debt, and save for things that matter."),
    ("Explain what a verb is.", "A verb is a word that names an action or a state, such as run, think or be."),
    ("Why do we have leap years?",
     "Because the Earth takes about a quarter of a day more than 365 days to orbit the Sun; adding a day every "
     "four years keeps the calendar in step with the seasons."),
    ("Explain what recycling means.",
     "Recycling is collecting used materials such as paper, glass or metal and processing them so they can be "
     "made into new products."),
    ("Give a short definition of democracy.",
     "A system of government in which citizens choose their leaders and decide laws, usually through free "
     "elections."),
    ("Explain how a thermometer works.",
     "A thermometer measures temperature by a property that changes with heat: a liquid that expands along a "
     "thin tube, or an electronic sensor whose resistance changes."),
    ("What does a compass needle point to?", "Magnetic north."),
    ("Explain how vaccines protect people from disease.",
     "A vaccine shows the immune system a harmless piece or weakened form of a germ. The body learns to "
     "recognise it and makes antibodies and memory cells. If the real germ arrives later, the immune system "
     "responds quickly and strongly, so the person usually does not fall ill or has only mild symptoms."),
    ("Give some advice for someone learning to cook.",
     "Start with a few simple dishes and cook them until you know them well. Read the whole recipe before "
     "you begin, prepare and measure everything first, and taste as you go. Keep your knives sharp, clean "
     "while you cook, and do not be afraid of mistakes: they teach you the most."),
    ("Explain what an index in a book is for.",
     "An index lists topics alphabetically with the pages where they appear, so readers can find them quickly."),
    ("Describe the water cycle briefly.",
     "Water evaporates from seas and lakes, condenses into clouds, falls as rain or snow, and flows back to "
     "the seas through rivers and ground water, where the cycle begins again."),
    ("Explain what a metaphor is, with an example.",
     "A metaphor describes something as if it were something else, without 'like' or 'as': 'Time is a thief' "
     "suggests that time steals moments from us."),
]
WRITE = [
    ("Write a haiku about a rainy morning.",
     "Grey roofs drum softly\nthe kettle hums its answer\npuddles hold the sky"),
    ("Write a one-sentence slogan for a neighbourhood library.", "Borrow a book, discover a world."),
    ("Write a short thank-you note to a neighbour who watered your plants.",
     "Dear Sam, thank you so much for watering my plants while I was away. They look happier than when I left! "
     "Please let me return the favour soon. Warm wishes, Alex"),
    ("Write a tweet announcing a bake sale on Saturday.",
     "Bake sale this Saturday from 10 am at the community hall! Cakes, cookies and bread, all homemade. "
     "Every penny goes to the new playground."),
    ("Write an opening line for a mystery story.",
     "The lighthouse had been dark for thirty years, so nobody could explain the light that came on at midnight."),
    ("Write a polite email subject line asking to reschedule a meeting.", "Request to reschedule our Thursday meeting"),
    ("Compose a two-line rhyme about a cat.", "The cat sat still upon the mat,\nand dreamed of fish and nothing flat."),
    ("Write a short motivational message for a student before an exam.",
     "You have prepared well. Read each question carefully, take a breath when you need it, and trust what you "
     "know. Good luck!"),
    ("Describe a sunset in two sentences.",
     "The sun sank into the sea like a coin into a well. Orange faded to violet, and the first stars appeared."),
    ("Write a product description for a reusable water bottle.",
     "Stay refreshed all day with our steel water bottle. It keeps drinks cold for 24 hours, fits in any cup "
     "holder, and replaces hundreds of plastic bottles a year."),
    ("Suggest a title for a blog post about growing tomatoes on a balcony.", "Tiny Balcony, Big Tomatoes"),
    ("Write a short story of about fifty words about a lost umbrella.",
     "Every morning the red umbrella waited by the station door. Commuters hurried past it in the rain, "
     "until one Tuesday a small girl picked it up and walked home dry. Her grandmother recognised it at "
     "once: she had lost it there, forty years before, on her first day of work."),
    ("Write a riddle whose answer is 'a shadow'.",
     "I follow you all day but vanish at night; I grow long in the evening and short at noon. What am I?"),
]
REWRITE = [
    ("Rewrite in the past tense: 'She walks to the market and buys apples.'",
     "She walked to the market and bought apples."),
    ("Make this sentence more formal: 'Can you send me the file asap?'",
     "Could you please send me the file at your earliest convenience?"),
    ("Correct the spelling in this sentence: 'I recieved the pakage yesterday.'",
     "I received the package yesterday."),
    ("Turn this into a question: 'The train leaves at noon.'", "Does the train leave at noon?"),
    ("Rewrite in the passive voice: 'The chef cooked the meal.'", "The meal was cooked by the chef."),
    ("Translate 'good morning' into Spanish.", "Buenos días."),
    ("Translate 'thank you' into German.", "Danke."),
    ("Translate 'cat' into French.", "Chat."),
]


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def kind_a(rng):
    rows = []
    # 36 invented companies, each with one question or task.
    names = [(a, b) for a in COMPANY_A for b in COMPANY_B]
    rng.shuffle(names)
    for i in range(36):
        a, b = names[i]
        name = f"{a} {b}"
        founder = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        town = rng.choice(TOWNS)
        year = rng.randint(1921, 2019)
        staff = rng.choice([12, 37, 64, 140, 215, 480, 1200, 3400])
        prod = rng.sample(PRODUCTS[b], 2)
        ctx = (f"{name} was founded in {year} by {founder} in {town}. The company makes {prod[0]} and "
               f"{prod[1]}, and employs {staff} people.")
        task = i % 8
        if task == 0:
            rows.append((f"Who founded {name}?", ctx, f"{founder}."))
        elif task == 1:
            rows.append((f"In which year was {name} founded?", ctx, str(year)))
        elif task == 2:
            rows.append((f"How many people does {name} employ?", ctx, f"{name} employs {staff} people."))
        elif task == 3:
            rows.append(("Where is the company based, and what does it make?", ctx,
                         f"It was founded in {town} and makes {prod[0]} and {prod[1]}."))
        elif task == 4:
            rows.append(("Summarise the passage in one sentence.", ctx,
                         f"{founder} founded {name} in {town} in {year}; it makes {prod[0]} and {prod[1]} "
                         f"with {staff} employees."))
        elif task == 5:
            rows.append(("Extract the founder's name and the founding year as 'name, year'.", ctx,
                         f"{founder}, {year}"))
        elif task == 6:
            age = 2024 - year
            rows.append((f"How old was {name} in 2024?", ctx, f"{age} years old."))
        else:
            rows.append(("Write a one-line advertisement for this company.", ctx,
                         f"{name}: {prod[0]} made with care in {town} since {year}."))
    # 40 invented people.
    people = [(f, l) for f in FIRST for l in LAST]
    rng.shuffle(people)
    for i in range(40):
        f, l = people[i]
        who = f"{f} {l}"
        town = rng.choice(TOWNS)
        prof, feat = PROFESSIONS[i % len(PROFESSIONS)]
        born = rng.randint(1940, 1999)
        award = rng.choice(["the Harbour Medal", "the Tallis Prize", "the Golden Quill", "a civic award",
                            "the Northlight Award"])
        award_year = born + rng.randint(25, 45)
        ctx = (f"{who} was born in {town} in {born}. {article(prof).capitalize()} {prof} by training, {f} became known for {feat}, and "
               f"received {award} in {award_year}.")
        task = i % 5
        if task == 0:
            rows.append((f"Where was {who} born?", ctx, f"In {town}."))
        elif task == 1:
            rows.append((f"What is {who}'s profession?", ctx, f"{f} is {article(prof)} {prof}."))
        elif task == 2:
            rows.append((f"What award did {f} receive, and when?", ctx, f"{award[0].upper()}{award[1:]}, in {award_year}."))
        elif task == 3:
            rows.append((f"How old was {f} when receiving the award?", ctx,
                         f"{award_year - born} years old."))
        else:
            rows.append(("Write a short biography of this person in two sentences.", ctx,
                         f"{who}, born in {town} in {born}, is {article(prof)} {prof} known for {feat}. In {award_year} "
                         f"{f} was honoured with {award}."))
    # 20 invented rules and worlds, 4 longer passages.
    for ctx, ins, out in COUNTERFACTUAL + PASSAGES:
        rows.append((ins, ctx, out))
    assert len(rows) == 100
    return rows


def kind_b(rng):
    rows = []
    for c, k in CAPITALS:
        rows.append((rng.choice(CAPITAL_Q).format(c=c), rng.choice(CAPITAL_CTX).format(c=c, k=k),
                     rng.choice(CAPITAL_A).format(c=c, k=k)))
    for w, a in AUTHORS:
        rows.append((rng.choice(AUTHOR_Q).format(w=w), rng.choice(AUTHOR_CTX).format(w=w, a=a),
                     rng.choice(AUTHOR_A).format(w=w, a=a)))
    for ctx, ins, out in SCIENCE:
        rows.append((ins, ctx, out))
    # Fill to 100 with capitals asked the other way round and authors asked for a work.
    extra = rng.sample(CAPITALS, 10)
    for c, k in extra:
        rows.append((f"{k} is the capital of which country?", f"{k} is the capital of {c}.", f"{c}."))
    for w, a in rng.sample([x for x in AUTHORS if x[1] != "William Shakespeare"], 8):
        rows.append((f"Name a famous work by {a}.", f"{a} wrote {w}.", f"{w}."))
    assert len(rows) == 100, len(rows)
    return rows


def kind_c(rng):
    rows = [(i, "", o) for i, o in LISTS + EXPLAIN + WRITE + REWRITE]
    n_hand = len(rows)
    units = [("kilometres", "metres", 1000), ("kilograms", "grams", 1000), ("hours", "minutes", 60),
             ("minutes", "seconds", 60), ("feet", "inches", 12), ("litres", "millilitres", 1000),
             ("days", "hours", 24), ("metres", "centimetres", 100)]
    for j in range(16):
        a, b, f = units[j % len(units)]
        x = rng.randint(2, 48)
        if j % 2 == 0:
            rows.append((f"Convert {x} {a} to {b}.", "", f"{x} {a} is {x * f} {b}."))
        else:
            rows.append((f"How many {b} are in {x} {a}?", "", str(x * f)))
    for j, c in enumerate(rng.sample([-10, 0, 5, 10, 15, 20, 25, 30, 35, 40, 100], 8)):
        fah = c * 9 // 5 + 32
        assert (c * 9) % 5 == 0
        rows.append((f"Convert {c} °C to Fahrenheit.", "", f"{c} °C is {fah} °F." if j % 2 else f"{fah} °F"))
    for j in range(10):
        x, y = rng.randint(3, 99), rng.randint(3, 99)
        op = j % 3
        if op == 0:
            rows.append((f"What is {x} + {y}?", "", str(x + y)))
        elif op == 1:
            rows.append((f"What is {x} times {y}?", "", f"{x} times {y} is {x * y}."))
        else:
            hi, lo = max(x, y), min(x, y)
            rows.append((f"Subtract {lo} from {hi}.", "", str(hi - lo)))
    while len(rows) < 100:
        nums = rng.sample(range(1, 100), rng.randint(4, 7))
        rows.append((f"Sort these numbers in ascending order: {', '.join(map(str, nums))}.", "",
                     ", ".join(map(str, sorted(nums)))))
    assert len(rows) == 100, (len(rows), n_hand)
    return rows


def build():
    rng = random.Random(SEED)
    rows = []
    for kind, make in (("a", kind_a), ("b", kind_b), ("c", kind_c)):
        for ins, inp, out in make(rng):
            rows.append(({"instruction": ins, "input": inp, "output": out}, kind))
    rng.shuffle(rows)
    rows, kinds = [r for r, _ in rows], [k for _, k in rows]
    for r in rows:
        n = len(r["output"].split())
        assert 1 <= n <= 60, r
        assert r["instruction"] and r["output"]
    return rows, kinds


def render(rows):
    return json.dumps(rows, indent=4, ensure_ascii=False) + "\n"


def main():
    rows, kinds = build()
    if "--kinds" in sys.argv[1:]:
        print(json.dumps(kinds))
        return
    text = render(rows)
    if "--check" in sys.argv[1:]:
        with open(OUT, encoding="utf-8") as f:
            same = f.read() == text
        print("identical" if same else "DIFFERENT")
        sys.exit(0 if same else 1)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {OUT}: {len(rows)} rows")


if __name__ == "__main__":
    main()
