"""Incremental identity: a night of new, changed, merged, split and deleted records gives
exactly the clusters and ids of a full rebuild (`--full-refresh`) from the same previous
state with the same stored identity model (u, m, prior, term frequencies), while it compares
only the pairs of new or changed records; a night that re-estimates the model gives exactly
what a full refresh (which re-estimates) gives.

The population is generated here (seeded): persons with a CRM contact and often a shop
account whose fields carry typos, moves and missing values, many sharing common names.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import subprocess

import duckdb
import pytest
from test_identity import IdentityProject, person

from personalization.warehouse.misses import guard_failure_sql

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


def _bridge(population: Population, shop_index: int, crm_index: int) -> tuple[str, dict]:
    """Give a shop account the crm email of another person: their two persons merge."""
    donor, taker = sorted(population.shop)[shop_index], population.crm[sorted(population.crm)[crm_index]]
    original = population.shop[donor]
    population.shop[donor] = {**original, "email": taker["email"], "email_normalized": taker["email_normalized"],
                              "email_sha256": taker["email_sha256"]}
    return donor, original


SHARED_PHONE = "+4915199887766"


def _share_phone(population: Population, count: int, phone: str = SHARED_PHONE) -> list[str]:
    """Give `count` crm contacts of different names one phone; more than 3 names make it junk
    (int_identity__junk_values), which nulls it on every record that has it."""
    chosen, names = [], set()
    for pid in sorted(population.crm):
        row = population.crm[pid]
        if row["phone_e164"] == phone or (row["first_name"], row["last_name"]) in names:
            continue
        names.add((row["first_name"], row["last_name"]))
        population.crm[pid] = {**row, "phone_e164": phone}
        chosen.append(pid)
        if len(chosen) == count:
            break
    return chosen


def _shared_phone_state(project: IdentityProject) -> tuple[int, int]:
    """(records with the shared phone, of them guarded as junk)."""
    return project.query(f"""select count(*), count(*) filter (where guarded.has_junk_phone)
        from int_identity__records as records
        inner join int_identity__guarded_records as guarded on records.record_key = guarded.record_key
        where records.phone_e164 = '{SHARED_PHONE}'""")[0]


def _start_rebuild(project: IdentityProject, root, population: Population, ds: str, events: tuple = (),
                   **dbt_vars) -> tuple[IdentityProject, subprocess.Popen]:
    """A full rebuild (`--full-refresh`) of `ds` from a copy of `project`'s warehouse, started
    in the background (it runs beside the incremental night from the same state)."""
    rebuilt = IdentityProject(root)
    shutil.copy(project.root / "warehouse.duckdb", rebuilt.root / "warehouse.duckdb")
    rebuilt.deliveries = dict(project.deliveries)
    rebuilt.load(*population.tables(), [], list(events))
    # Models only: the seed came with the copied warehouse, the tests run on the incremental side.
    return rebuilt, rebuilt.start_build(ds, full_refresh=True, run_only=True, **dbt_vars)


def _night(project: IdentityProject, rebuild: tuple[IdentityProject, subprocess.Popen], population: Population,
           ds: str, events: tuple = (), **dbt_vars) -> dict:
    """The incremental night of `ds` beside its full rebuild: both results."""
    project.load(*population.tables(), [], list(events))
    incremental = project.start_build(ds, **dbt_vars)
    rebuilt, process = rebuild
    rebuilt.finish_build(process)
    project.finish_build(incremental)
    return {"ids": project.ids(), "rebuilt_ids": rebuilt.ids(),
            "blocking_keys": _blocking_keys(project), "rebuilt_blocking_keys": _blocking_keys(rebuilt),
            "tables": _changed_rows_tables(project), "rebuilt_tables": _changed_rows_tables(rebuilt)}


# The tables an incremental night writes as their changes (macros/changed_rows.sql), with the
# columns a full rebuild must give alike (the region's flags differ by design: a rebuild's
# region is every record).
CHANGED_ROWS_TABLES = {
    # changed_at: when the run that last wrote a row started (stamped tables)
    "int_persons__records": "* exclude (changed_at)",
    "int_identity__records": "* exclude (changed_at)",
    "int_identity__guarded_records": "* exclude (changed_at)",
    "int_identity__record_fingerprints": "* exclude (changed_at)",
    "int_identity__candidate_pairs": "* exclude (changed_at)",
    "int_identity__pair_comparisons": "* exclude (changed_at)",
    "int_identity__scored_pairs": "* exclude (changed_at)",
    "int_identity__deterministic_components": "*",
    "int_identity__cluster_region": "record_key, record_signature",
    "int_identity__clusters": "* exclude (changed_at)",
    "int_identity__id_assignment": "* exclude (changed_at)",
}


PAIR_TABLES = ("int_identity__candidate_pairs", "int_identity__pair_comparisons", "int_identity__scored_pairs")


def _changed_rows_tables(project: IdentityProject) -> dict[str, list[tuple]]:
    return {table: project.query(f"select {columns} from {table} order by all")
            for table, columns in CHANGED_ROWS_TABLES.items()}


def _blocking_keys(project: IdentityProject) -> list[tuple]:
    return project.query("""select record_key, component_id, blocking_rule, block_key, block_size, fingerprint
        from int_identity__blocking_keys order by all""")


def _model_state(project: IdentityProject, ds: str) -> dict:
    row = project.query(f"""select
        (select max(estimated_on)::string from int_identity__m_probabilities),
        (select max(estimated_on)::string from int_identity__term_frequencies),
        (select reason from int_identity__model_schedule),
        (select count(*) from int_identity__compared_pairs where compared_on = '{ds}'),
        (select count(*) from int_identity__u_sample_pairs),
        (select count(*) filter (where in_region) from int_identity__cluster_region),
        (select count(*) from int_identity__cluster_region),
        (select count(distinct blocking_rule || block_key) filter (where sized_on = '{ds}')
         from int_identity__blocking_keys),
        (select count(distinct blocking_rule || block_key) from int_identity__blocking_keys),
        (select count(*) filter (where is_record_state_row) - count(distinct record_key)
         from int_identity__blocking_keys)""")[0]
    state = dict(zip(("m_estimated_on", "tf_estimated_on", "reason", "compared", "sample_pairs", "region",
                      "records", "blocks_sized", "blocks", "extra_state_rows"), row, strict=True))
    # Which pair tables computed only the pairs of tonight's records (identity_pair_scope): the
    # SQL dbt ran, since the rows are the same either way.
    compiled = project.root / "target" / "compiled" / "personalization" / "dbt_project" / "models" / "intermediate" / "identity"
    state["scoped_pairs"] = sorted(table for table in PAIR_TABLES
                                   if "touched_records" in (compiled / f"{table}.sql").read_text())
    return state


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """Night 1 from scratch; night 2 incremental with the stored model, and a full rebuild with
    the same stored model from the same night-1 state; night 3 incremental re-estimating the
    model, and a full refresh (which re-estimates) from the same night-2 state. Night 3 also
    brings back a contact's night-1 fields and a shop account deleted on night 2."""
    population = Population()
    bridged, original = _bridge(population, 5, 40)
    # Three names share a phone: not junk yet (more than 3 names make it junk).
    _share_phone(population, 3)
    incremental = IdentityProject(tmp_path_factory.mktemp("identity_incremental"))
    incremental.load(*population.tables(), [], [])
    night1_crm = {pid: dict(row) for pid, row in population.crm.items()}
    incremental.build(NIGHTS[0])
    first = incremental.ids()
    state = {"night1": _model_state(incremental, NIGHTS[0])}
    shared_phone = {"night1": _shared_phone_state(incremental)}
    # Night 2: a fourth name takes the phone, which becomes junk on the three records that
    # did not change; night 3: it leaves again and the phone stops being junk on them.
    fourth = _share_phone(population, 1)[0]

    # A contact that moves and moves back on night 3: its night-1 fingerprint is in the caches
    # since night 1 (its keys and comparisons are not computed again, and must still be found).
    moved_back = next(pid for pid in sorted(population.crm) if pid != fourth)
    night1_row = night1_crm[moved_back]
    for _ in range(15):
        population.add_person()
    population.change(12)
    population.crm[moved_back] = person(night1_row["id"], night1_row["first_name"], night1_row["last_name"],
                                        night1_row["email"], phone=night1_row["phone_e164"],
                                        street="Ringstr. 99", postcode="10999", city="Berlin",
                                        birth_date=str(night1_row["birth_date"]))
    population.shop[bridged] = original  # the bridging email is corrected: a split
    second_bridge = _bridge(population, 60, 90)  # another bridge: a merge of two old ids
    # A new shop account of an existing person (a fuzzy link to an old id) and deleted records.
    crm = population.crm[sorted(population.crm)[3]]
    population.shop["extra"] = person("sextra", crm["first_name"], crm["last_name"], "x.y@other.de",
                                      phone=crm["phone_e164"], street=crm["street"],
                                      postcode=crm["postcode_clean"], city=crm["city"])
    returning = {pid: population.shop[pid] for pid in sorted(population.shop)[20:23]}
    for pid in returning:
        del population.shop[pid]

    # The stored model is kept on night 2 (1 day old, the population grew < 5 %): the full
    # rebuild it must equal is one with the same stored parameters.
    rebuild = _start_rebuild(incremental, tmp_path_factory.mktemp("identity_full_2"), population, NIGHTS[1],
                             identity_reestimate=False)
    second = _night(incremental, rebuild, population, NIGHTS[1])
    state["night2"] = _model_state(incremental, NIGHTS[1])
    shared_phone["night2"] = _shared_phone_state(incremental)
    population.crm[fourth] = {**population.crm[fourth], "phone_e164": "+4915100000042"}
    counts = incremental.query("""select
        (select count(*) from identity_merges), (select count(*) from int_identity__splits)""")[0]

    # Night 3: the second bridge is corrected (a split), the fuzzy link's shop account and
    # crm contacts are deleted, more persons and changes; the model is re-estimated.
    population.shop[second_bridge[0]] = second_bridge[1]
    del population.shop["extra"]
    for pid in sorted(population.crm)[100:104]:
        del population.crm[pid]
    for _ in range(10):
        population.add_person()
    population.change(8)
    population.crm[moved_back] = night1_row
    pid = sorted(returning)[0]  # a deleted shop account comes back as it was
    population.shop[pid] = returning[pid]
    rebuild = _start_rebuild(incremental, tmp_path_factory.mktemp("identity_full_3"), population, NIGHTS[2])
    third = _night(incremental, rebuild, population, NIGHTS[2], identity_reestimate=True)
    state["night3"] = _model_state(incremental, NIGHTS[2])
    shared_phone["night3"] = _shared_phone_state(incremental)
    splits_third = incremental.query("select count(*) from int_identity__splits")[0][0]
    return {"project": incremental, "first": first, "second": second["ids"], "rebuilt_second": second["rebuilt_ids"],
            "third": third["ids"], "rebuilt_third": third["rebuilt_ids"], "state": state,
            "blocking_keys": {night: (result["blocking_keys"], result["rebuilt_blocking_keys"])
                              for night, result in (("night2", second), ("night3", third))},
            "tables": {night: (result["tables"], result["rebuilt_tables"])
                       for night, result in (("night2", second), ("night3", third))},
            "merges": counts[0], "splits": counts[1], "splits_third": splits_third,
            "shared_phone": shared_phone}


def test_incremental_night_with_the_stored_model_equals_a_full_rebuild_with_the_same_model(nights):
    assert nights["state"]["night2"]["reason"] is None
    assert nights["state"]["night2"]["m_estimated_on"] == NIGHTS[0]
    assert nights["state"]["night2"]["tf_estimated_on"] == NIGHTS[0]
    assert nights["second"] == nights["rebuilt_second"]


def test_reestimation_night_equals_a_full_refresh(nights):
    assert nights["state"]["night3"]["reason"] == "forced"
    assert nights["state"]["night3"]["m_estimated_on"] == NIGHTS[2]
    assert nights["third"] == nights["rebuilt_third"]


def test_incremental_night_compares_only_pairs_of_new_or_changed_records(nights):
    first, second = nights["state"]["night1"], nights["state"]["night2"]
    assert first["compared"] > 1000 and first["sample_pairs"] > 0
    # With the stored model kept no random pairs are drawn for u: only new candidate pairs.
    assert second["sample_pairs"] == 0
    assert 0 < second["compared"] < first["compared"] / 10


def test_pair_tables_follow_only_tonights_records_unless_the_model_was_reestimated(nights):
    # Night 1 has no table to follow, night 3 re-estimates; their rows equal the full rebuilds'
    # either way (test_tables_written_as_their_changes_equal_a_full_rebuild).
    scoped = [nights["state"][night]["scoped_pairs"] for night in ("night1", "night2", "night3")]
    assert scoped == [[], list(PAIR_TABLES), []]


def test_a_new_match_threshold_decides_every_kept_pair_again(nights, tmp_path):
    # A night that follows only tonight's records (none here) and keeps the model still decides
    # every kept pair at tonight's threshold and guard (the scores stay: the model is the same).
    after = IdentityProject(tmp_path / "threshold")
    shutil.copy(nights["project"].root / "warehouse.duckdb", after.root / "warehouse.duckdb")
    after.build(NIGHTS[2], run_only=True, select="int_identity__model_schedule int_identity__scored_pairs",
                identity_reestimate=False, identity_match_threshold=0.5)
    guard = guard_failure_sql(after.root)
    matches = {}
    for name, project in (("before", nights["project"]), ("after", after)):
        matches[name] = project.query(f"""select
            count(*) filter (where is_match),
            count(*) filter (where is_match is distinct from (match_probability >= 0.5 and ({guard}) is null))
            from int_identity__scored_pairs""")[0]
    assert matches["after"][1] == 0
    assert matches["after"][0] > matches["before"][0]  # pairs between 0.5 and the default became matches


def test_incremental_night_reclusters_only_the_touched_region(nights):
    first, second, third = (nights["state"][f"night{n}"] for n in (1, 2, 3))
    assert first["region"] == first["records"]  # no state of a night before
    assert 0 < second["region"] < second["records"] / 2
    assert third["region"] == third["records"]  # the model was re-estimated: every weight may change


def test_incremental_blocks_equal_a_full_rebuild_and_only_touched_blocks_are_resized(nights):
    for night in ("night2", "night3"):
        incremental, rebuilt = nights["blocking_keys"][night]
        assert incremental and incremental == rebuilt, night
        state = nights["state"][night]
        # Only the blocks a new, changed or deleted record is or was in were recomputed.
        assert 0 < state["blocks_sized"] < state["blocks"] / 2, night
        assert state["extra_state_rows"] == 0, night  # one state row per record, as a rebuild has
    assert nights["state"]["night1"]["blocks_sized"] == nights["state"]["night1"]["blocks"]


def test_tables_written_as_their_changes_equal_a_full_rebuild(nights):
    # New, changed and deleted records (and their clusters and ids) reach every table that an
    # incremental night writes as its changes; no placeholder row of a deleted key is left.
    for night in ("night2", "night3"):
        incremental, rebuilt = nights["tables"][night]
        for table in CHANGED_ROWS_TABLES:
            assert incremental[table] and incremental[table] == rebuilt[table], (night, table)


def test_a_value_that_becomes_junk_or_stops_being_junk_reaches_unchanged_records(nights):
    # The guarded records of the three contacts that never changed follow the phone's junk
    # status (the equality with the rebuilds above checks the rows themselves).
    # (night 2's new shop account of an existing person may copy the phone: 4 or 5 records)
    shared = nights["shared_phone"]
    assert shared["night1"] == (3, 0) and shared["night3"] == (3, 0), shared
    assert shared["night2"][0] >= 4 and shared["night2"][1] == shared["night2"][0], shared


def test_ids_stay_stable_through_merges_splits_and_deletions(nights):
    assert nights["merges"] >= 1 and nights["splits"] >= 1
    assert nights["splits_third"] > nights["splits"]
    for before, after in (("first", "second"), ("second", "third")):
        kept = [key for key in nights[before] if key in nights[after]]
        assert sum(nights[before][key] == nights[after][key] for key in kept) / len(kept) >= 0.95


def _cookie_records(project: IdentityProject) -> dict[str, tuple]:
    rows = project.query("select source_id, updated_at, changed_at from int_identity__records where source = 'pixel'")
    records = {source_id: (updated_at, changed_at) for source_id, updated_at, changed_at in rows}
    assert len(records) == len(rows), "a cookie has two records"
    return records


def test_a_cookie_record_follows_the_cookies_existence_not_its_visits(tmp_path):
    """A pixel record is its cookie, without a visit time: a night writes only cookies new in
    the cookie keys and removes those no longer in them (int_identity__records). A late event,
    a newer visit of a known cookie leave its row as it was; a new cookie gets one; a rerun
    that no longer delivers a cookie's only visit removes it; a full refresh gives the same
    rows. A cookie row written with a visit time (by earlier code) is written again once."""
    project = IdentityProject(tmp_path / "cookies")
    crm = [person("c1", "Anna", "Schmidt", "anna.schmidt@mail.de")]
    late, moved, only = "cookie-late", "cookie-moved", "cookie-only"
    first_night = [(late, None, None, None, dt.datetime(2026, 1, 1, 10)),
                   (moved, None, None, None, dt.datetime(2026, 1, 1, 8))]
    project.load(crm, [], [], first_night, delivered_on="2026-01-01")
    project.build("2026-01-01")
    with duckdb.connect(str(project.root / "warehouse.duckdb")) as con:
        con.execute("update int_identity__records set updated_at = timestamp '2026-01-01 10:00' "
                    "where source_id = ?", [late])
    before = _cookie_records(project)
    newest = (moved, None, None, None, dt.datetime(2026, 1, 2, 9))
    new_cookie = (only, None, None, None, dt.datetime(2026, 1, 2, 7))
    second_night = [*first_night, (late, None, None, None, dt.datetime(2025, 12, 31, 9)), newest, new_cookie]
    project.load(crm, [], [], second_night, delivered_on="2026-01-02")
    project.build("2026-01-02", run_only=True)
    after = _cookie_records(project)
    assert set(after) == {late, moved, only}
    assert after[moved] == before[moved]  # not written again
    assert after[late][1] > before[late][1]  # the row with a visit time was
    assert {updated_at for updated_at, _ in after.values()} == {None}

    # The rerun of 2026-01-02 without two of its visits: their cookie-key rows are dropped.
    project.load(crm, [], [], [event for event in second_night if event not in (newest, new_cookie)],
                 delivered_on="2026-01-02")
    project.build("2026-01-02", run_only=True)
    rerun = _cookie_records(project)
    assert set(rerun) == {late, moved}
    project.build("2026-01-02", full_refresh=True, run_only=True)
    assert {c: updated_at for c, (updated_at, _) in _cookie_records(project).items()} == {late: None, moved: None}


def test_a_catch_up_night_folds_the_cookie_keys_as_a_full_build(tmp_path):
    """A night after missed ones loads several deliveries at once; the fold
    (cookie_keys_fold) then finds a combination's newer row in any of them, not only in the
    newest before `ds`: a cookie logged in on night 1 and again on night 2 keeps only its
    night-2 row when night 4 catches up on nights 2 to 4, as a full build does."""
    project = IdentityProject(tmp_path / "catch_up")
    crm = [person("c1", "Anna", "Schmidt", "anna.schmidt@mail.de")]
    events = [("cookie-login", "a1", None, None, dt.datetime(2026, 1, 1, 10))]
    project.load(crm, [], [], events, delivered_on="2026-01-01")
    project.build("2026-01-01", run_only=True, select="+int_identity__cookie_keys")
    for night, event in (("2026-01-02", ("cookie-login", "a1", None, None, dt.datetime(2026, 1, 2, 10))),
                         ("2026-01-03", ("cookie-other", None, None, None, dt.datetime(2026, 1, 3, 9))),
                         ("2026-01-04", ("cookie-late", None, None, None, dt.datetime(2026, 1, 4, 9)))):
        events.append(event)
        project.load(crm, [], [], events, delivered_on=night)
    rows = "select delivered_on, anonymous_id, customer_id from int_identity__cookie_keys order by all"
    project.build("2026-01-04", run_only=True, select="+int_identity__cookie_keys")
    caught_up = project.query(rows)
    project.build("2026-01-04", full_refresh=True, run_only=True, select="+int_identity__cookie_keys")
    assert caught_up == project.query(rows) == [
        (dt.date(2026, 1, 2), "cookie-login", "a1"),
        (dt.date(2026, 1, 3), "cookie-other", None),
        (dt.date(2026, 1, 4), "cookie-late", None)]


def test_a_night_after_one_that_stopped_before_the_ids_equals_a_full_rebuild(tmp_path):
    """A night that stopped after the clusters leaves int_identity__id_assignment a night
    behind them: the records they merged are outside the next night's region. That night
    must assign ids over every record (identity_previous_night_stopped) and give the ids and
    rows of a full rebuild."""
    population = Population(seed=5, persons=80)
    project = IdentityProject(tmp_path / "incremental")
    project.load(*population.tables(), [], [])
    project.build(NIGHTS[0])
    for _ in range(8):
        population.add_person()
    population.change(10)
    _bridge(population, 3, 30)  # a merge in the night that stops
    project.load(*population.tables(), [], [])
    project.build(NIGHTS[1], run_only=True, select="+int_identity__clusters", identity_reestimate=False)
    for _ in range(4):
        population.add_person()
    rebuild = _start_rebuild(project, tmp_path / "rebuilt", population, NIGHTS[2], identity_reestimate=False)
    night = _night(project, rebuild, population, NIGHTS[2], identity_reestimate=False)
    assert night["ids"] == night["rebuilt_ids"]
    tables, rebuilt_tables = night["tables"], night["rebuilt_tables"]
    assert tables["int_identity__id_assignment"] == rebuilt_tables["int_identity__id_assignment"]


def test_a_night_whose_clusters_failed_leaves_its_edges_to_the_next_night(tmp_path):
    """When the clusters fail (a night built without `int_identity__clusters` and what follows
    it), the edges that night found must still count as changed the next night: the region
    compares tonight's edges with the stored ones, so those are stored only with the clusters.
    A cookie that logs into an account brings only an edge (its record's fields, and so its
    signature, do not change): the next night must merge them, as a full rebuild does.

    Then the other way round: a night stops after the clusters, before the edges are stored
    (a rerun without a second cookie's login splits it from its account). When the login
    comes back the next night, its edge equals a stored one and touches no record, yet it
    joins two of last night's clusters: stored edges older than the clusters are no baseline
    (identity_stored_edges_state), and the night must merge them again as a full rebuild does."""
    population = Population(seed=5, persons=80)
    project = IdentityProject(tmp_path / "incremental")
    account = population.shop[sorted(population.shop)[0]]["id"]
    cookie = ("cookie-login", None, None, None, dt.datetime(2026, 1, 1, 9))
    project.load(*population.tables(), [], [cookie])
    project.build(NIGHTS[0])
    events = (cookie, ("cookie-login", account, None, None, dt.datetime(2026, 1, 2, 9)))
    project.load(*population.tables(), [], list(events), delivered_on=NIGHTS[1])
    project.build(NIGHTS[1], run_only=True, exclude="int_identity__clusters+", identity_reestimate=False)
    rebuild = _start_rebuild(project, tmp_path / "rebuilt", population, NIGHTS[2], events,
                             identity_reestimate=False)
    night = _night(project, rebuild, population, NIGHTS[2], events, identity_reestimate=False)
    assert night["ids"]["pixel:cookie-login"] == night["ids"][f"shop:{account}"]
    assert night["ids"] == night["rebuilt_ids"]

    # A second cookie logs into another account on a later night (merged, edges stored); the
    # rerun of that night without the login stops before the edges; then the login comes back.
    other = population.shop[sorted(population.shop)[1]]["id"]
    visit = ("cookie-two", None, None, None, dt.datetime(2026, 1, 4, 8))
    login = ("cookie-two", other, None, None, dt.datetime(2026, 1, 4, 9))
    project.load(*population.tables(), [], [*events, visit, login], delivered_on="2026-01-04")
    project.build("2026-01-04", run_only=True, identity_reestimate=False)
    assert project.ids()["pixel:cookie-two"] == project.ids()[f"shop:{other}"]
    project.load(*population.tables(), [], [*events, visit], delivered_on="2026-01-04")
    project.build("2026-01-04", run_only=True, exclude="int_identity__cluster_edges", identity_reestimate=False)
    assert project.ids()["pixel:cookie-two"] != project.ids()[f"shop:{other}"]
    events = (*events, visit, ("cookie-two", other, None, None, dt.datetime(2026, 1, 5, 9)))
    project.deliveries[events[-1]] = dt.date(2026, 1, 5)
    rebuild = _start_rebuild(project, tmp_path / "rebuilt_later", population, "2026-01-05", events,
                             identity_reestimate=False)
    night = _night(project, rebuild, population, "2026-01-05", events, identity_reestimate=False)
    assert night["ids"]["pixel:cookie-two"] == night["ids"][f"shop:{other}"]
    assert night["ids"] == night["rebuilt_ids"]


def test_a_build_without_the_identity_map_keeps_last_nights_ids(tmp_path):
    """A build that never made identity_map (`--select +customer_profiles`, as an analyst may
    run it) reads last night's ids from int_identity__id_assignment itself: a merge keeps the
    id of the side with most records and a night after one that stopped before the ids
    assigns them over every record, as a full rebuild from the same state does. Without the
    map both used to start from no ids: the stopped night went unnoticed, and the records it
    brought got no id."""
    population = Population(seed=5, persons=80)
    project = IdentityProject(tmp_path / "incremental")
    project.load(*population.tables(), [], [])
    project.build(NIGHTS[0], exclude="identity_map+")
    for _ in range(8):
        population.add_person()
    population.change(10)
    _bridge(population, 3, 30)  # a merge in the night that stops
    project.load(*population.tables(), [], [])
    project.build(NIGHTS[1], run_only=True, exclude="int_identity__id_assignment+ identity_map",
                  identity_reestimate=False)
    for _ in range(4):
        population.add_person()
    rebuilt, process = _start_rebuild(project, tmp_path / "rebuilt", population, NIGHTS[2],
                                      identity_reestimate=False)
    project.load(*population.tables(), [], [])
    incremental = project.start_build(NIGHTS[2], run_only=True, exclude="identity_map",
                                      identity_reestimate=False)
    rebuilt.finish_build(process)
    project.finish_build(incremental)
    assignment = "select * exclude (changed_at) from int_identity__id_assignment order by all"
    ids = project.query(assignment)
    assert len(ids) == len(population.crm) + len(population.shop)
    assert ids == rebuilt.query(assignment)
    # (record_key, ..., unified_id, ..., previous_unified_id): last night's ids were read.
    previous = [row[8] for row in ids]
    assert sum(p is not None for p in previous) > len(ids) // 2
    assert any(row[8] is not None and row[8] != row[3] for row in ids)  # a merge absorbed one
