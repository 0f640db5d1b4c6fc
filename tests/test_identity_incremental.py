"""Incremental identity: three nights of new, changed, merged and deleted records give, night
by night, exactly the clusters and ids of a full rebuild (`--full-refresh`) from the same
previous state, while the incremental nights compare only the pairs of new or changed records.

The population is generated here (seeded): persons with a CRM contact and often a shop
account whose fields carry typos, moves and missing values, many sharing common names.
"""

from __future__ import annotations

import random
import shutil

import pytest
from test_identity import IdentityProject, person

FIRST = ["Anna", "Lena", "Maria", "Paul", "Jonas", "Lukas", "Emma", "Mia", "Felix", "Leon",
         "Sophie", "Hannah", "Noah", "Elias", "Clara", "Greta", "Theo", "Ida", "Karl", "Frieda"]
LAST = ["Schmidt", "Müller", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
        "Hoffmann", "Schulz", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Zimmermann",
        "Krüger", "Hartmann", "Lange", "Werner", "Krause", "Lehmann", "Schmitt", "Braun"]
STREETS = ["Hauptstr", "Bahnhofstr", "Gartenweg", "Lindenallee", "Schulstr", "Bergstr", "Ringweg"]
CITIES = [("Berlin", "10115"), ("Hamburg", "20095"), ("Leipzig", "04109"), ("Köln", "50667")]
NIGHTS = ["2026-01-01", "2026-01-02", "2026-01-03"]


def _typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


class Population:
    """Seeded persons and their crm/shop records; nights change them."""

    def __init__(self, seed: int = 13, persons: int = 300):
        self.rng = random.Random(seed)
        self.crm: dict[str, dict] = {}
        self.shop: dict[str, dict] = {}
        self.next_id = 0
        for _ in range(persons):
            self.add_person()

    def _fields(self) -> dict:
        rng = self.rng
        city, postcode = rng.choice(CITIES)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        return {"first": first, "last": last, "street": f"{rng.choice(STREETS)} {rng.randint(1, 60)}",
                "postcode": postcode[:-2] + f"{rng.randint(0, 99):02d}", "city": city,
                "birth_date": f"{rng.randint(1950, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "phone": f"+4917{rng.randint(10_000_000, 99_999_999)}" if rng.random() < 0.5 else None}

    def add_person(self) -> str:
        self.next_id += 1
        pid, f = f"p{self.next_id}", self._fields()
        self.crm[pid] = person(f"c{pid}", f["first"], f["last"], f"{f['first']}.{f['last']}{self.next_id}@mail.de",
                               phone=f["phone"], street=f["street"], postcode=f["postcode"],
                               birth_date=f["birth_date"], city=f["city"])
        if self.rng.random() < 0.6:
            # The shop account: another mailbox, often a typo in a name, sometimes no phone.
            first = _typo(f["first"], self.rng) if self.rng.random() < 0.3 else f["first"]
            last = _typo(f["last"], self.rng) if self.rng.random() < 0.3 else f["last"]
            self.shop[pid] = person(f"s{pid}", first, last, f"{first[0]}{last}{self.next_id}@shop.de",
                                    phone=f["phone"] if self.rng.random() < 0.5 else None,
                                    street=f["street"], postcode=f["postcode"], city=f["city"])
        return pid

    def change(self, count: int) -> None:
        """Moves, corrected typos and new phones on existing records."""
        for pid in self.rng.sample(sorted(self.crm), count):
            row, f = dict(self.crm[pid]), self._fields()
            kind = self.rng.choice(["move", "phone", "name"])
            if kind == "move":
                row.update(person(row["id"], row["first_name"], row["last_name"], row["email"],
                                  phone=row["phone_e164"], street=f["street"], postcode=f["postcode"],
                                  birth_date=str(row["birth_date"]), city=f["city"]))
            elif kind == "phone":
                row.update(phone_e164=f["phone"] or "+4915112345678")
            else:
                row.update(person(row["id"], _typo(row["first_name"], self.rng), row["last_name"],
                                  row["email"], phone=row["phone_e164"], street=row["street"],
                                  postcode=row["postcode_clean"], birth_date=str(row["birth_date"]),
                                  city=row["city"]))
            self.crm[pid] = row

    def tables(self) -> tuple[list[dict], list[dict]]:
        return list(self.crm.values()), list(self.shop.values())


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Night by night: the incremental build, and a full rebuild from the same previous state."""
    population = Population()
    incremental = IdentityProject(tmp_path_factory.mktemp("identity_incremental"))
    rebuilt = IdentityProject(tmp_path_factory.mktemp("identity_full"))
    results = []
    for number, ds in enumerate(NIGHTS, start=1):
        if number == 2:
            for _ in range(15):
                population.add_person()
            population.change(12)
            # A new shop account of an existing person (a fuzzy merge into an old id), and
            # an existing shop account given the crm email of another person (two old ids merge).
            pid = sorted(population.crm)[3]
            crm = population.crm[pid]
            population.shop["extra"] = person("sextra", crm["first_name"], crm["last_name"], "x.y@other.de",
                                              phone=crm["phone_e164"], street=crm["street"],
                                              postcode=crm["postcode_clean"], city=crm["city"])
            donor, taker = sorted(population.shop)[5], sorted(population.crm)[40]
            donor_row = population.shop[donor]
            population.shop[donor] = {**donor_row, "email": population.crm[taker]["email"],
                                      "email_normalized": population.crm[taker]["email_normalized"],
                                      "email_sha256": population.crm[taker]["email_sha256"]}
        if number == 3:
            for _ in range(10):
                population.add_person()
            population.change(12)
            # The bridging email is taken back (a split), and a few records are deleted.
            population.shop[donor] = donor_row
            for pid in sorted(population.shop)[20:23]:
                del population.shop[pid]
        crm, shop = population.tables()
        if number > 1:
            shutil.copy(incremental.root / "warehouse.duckdb", rebuilt.root / "warehouse.duckdb")
            rebuilt.load(crm, shop, [], [])
            rebuilt.build(ds, full_refresh=True)
        incremental.load(crm, shop, [], [])
        incremental.build(ds)
        compared = incremental.query(
            f"select count(*) filter (where compared_on = '{ds}'), count(*) from int_identity__compared_pairs")[0]
        results.append({"incremental": incremental.ids(), "rebuilt": rebuilt.ids() if number > 1 else None,
                        "compared_tonight": compared[0], "compared_total": compared[1],
                        "merges": incremental.query("select count(*) from identity_merges")[0][0],
                        "splits": incremental.query("select count(*) from identity_splits")[0][0]})
    return results


def test_incremental_nights_give_the_clusters_and_ids_of_a_full_rebuild(nights):
    for night in nights[1:]:
        assert night["incremental"] == night["rebuilt"]


def test_incremental_nights_compare_only_pairs_of_new_or_changed_records(nights):
    first, *later = nights
    assert first["compared_tonight"] == first["compared_total"] > 1000
    for night in later:
        assert 0 < night["compared_tonight"] < first["compared_total"] / 3


def test_ids_stay_stable_through_merges_and_splits(nights):
    assert nights[2]["merges"] >= 1 and nights[2]["splits"] >= 1
    for before, after in zip(nights, nights[1:], strict=False):
        kept = [key for key in before["incremental"] if key in after["incremental"]]
        unchanged = sum(before["incremental"][key] == after["incremental"][key] for key in kept)
        assert unchanged / len(kept) >= 0.95
