"""The PMU tables (namespace ``pmu``): normalised units, stable keys, documented columns.

Units, whatever the endpoint sends:
    * instants are UTC ``timestamptz`` (the API sends epoch milliseconds plus a separate offset);
      ``program_date`` / ``raced_on`` are the local (Paris) day;
    * money is in euros, ``NUMERIC(14, 2)`` (the API mixes euros and cents: prizes are euros,
      earnings, stakes and dividends are cents);
    * durations are seconds (the API sends ms in participants / programme and centiseconds in
      performances-detaillees);
    * weights are kilograms (the API sends hectograms).

Keys:
    * horse_key   = ``NAME-DAM-SIRE``, upper case, accents stripped, spaces collapsed. It equals the
                    API's ``idCheval`` where recent responses carry it, and is computed the same way
                    for older responses that do not, so a horse keeps one key across days and years.
    * jockey_key / trainer_key = the person's name, upper case, accents stripped, spaces collapsed
                    (the API only gives names; ``driver`` is the jockey or the driver).
    * races are ``(program_date, meeting_num, race_num)`` = the day and the R/C numbers.

Text columns are ``TEXT``, not guessed ``VARCHAR(n)`` lengths: real data holds longer values than any
guess (a 56-character coat label), and a value that does not fit must not fail a whole day.
"""

from __future__ import annotations

import sqlalchemy as sa

from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.warehouse import lineage_columns

METADATA = sa.MetaData(schema="pmu")

EUROS = sa.Numeric(14, 2)
SECONDS = sa.Numeric(10, 3)
KILOGRAMS = sa.Numeric(6, 1)


def _race_key() -> list[sa.Column]:
    return [
        sa.Column("program_date", sa.Date, primary_key=True, comment="Programme day (Europe/Paris)"),
        sa.Column("meeting_num", sa.Integer, primary_key=True, comment="Meeting number R (numOfficiel)"),
        sa.Column("race_num", sa.Integer, primary_key=True, comment="Race number C (numOrdre)"),
    ]


daily_program = sa.Table(
    "daily_program",
    METADATA,
    sa.Column("program_date", sa.Date, primary_key=True, comment="Programme day (Europe/Paris)"),
    sa.Column("starts_at", sa.DateTime(timezone=True), comment="Local midnight of the day, as a UTC instant"),
    sa.Column("utc_offset_s", sa.Integer, comment="Offset of French time that day, seconds (3600 or 7200)"),
    sa.Column("meetings", sa.Integer, comment="Number of meetings in the programme"),
    sa.Column("races", sa.Integer, comment="Number of races in the programme"),
    sa.Column("cancelled_races", sa.Integer, comment="Races with status COURSE_ANNULEE"),
    *lineage_columns(),
    comment="One row per programme day.",
)

race_meeting = sa.Table(
    "race_meeting",
    METADATA,
    sa.Column("program_date", sa.Date, primary_key=True, comment="Programme day (Europe/Paris)"),
    sa.Column("meeting_num", sa.Integer, primary_key=True, comment="Meeting number R (numOfficiel)"),
    sa.Column("external_num", sa.Integer, comment="numExterne"),
    sa.Column("nature", sa.Text, comment="DIURNE, SEMINOCTURNE or NOCTURNE"),
    sa.Column("hippodrome_code", sa.Text, comment="Racecourse code (reunion hippodrome.code)"),
    sa.Column("hippodrome_name", sa.Text, comment="Racecourse short name"),
    sa.Column("hippodrome_long_name", sa.Text),
    sa.Column("country_code", sa.Text, comment="ISO 3 code; foreign meetings are in the French programme"),
    sa.Column("country_name", sa.Text),
    sa.Column("audience", sa.Text, comment="NATIONAL, REGIONAL or LOCAL"),
    sa.Column("status", sa.Text, comment="PROGRAMMEE, TERMINEE, ANNULEE ..."),
    sa.Column("is_cancelled", sa.Boolean, nullable=False),
    sa.Column("disciplines", sa.JSON, comment='disciplinesMere, e.g. ["TROT"]'),
    sa.Column("specialities", sa.JSON, comment='specialites, e.g. ["TROT_ATTELE"]'),
    sa.Column("weather_label", sa.Text, comment="meteo.nebulositeLibelleCourt"),
    sa.Column("temperature_c", sa.Integer, comment="meteo.temperature, degrees Celsius"),
    sa.Column("wind_force", sa.Integer, comment="meteo.forceVent"),
    sa.Column("wind_direction", sa.Text, comment="meteo.directionVent"),
    sa.Column("race_count", sa.Integer, comment="Races of this meeting in the programme"),
    *lineage_columns(),
    comment="One row per meeting (réunion) of a day.",
)

race = sa.Table(
    "race",
    METADATA,
    *_race_key(),
    sa.Column("external_num", sa.Integer, comment="numExterne"),
    sa.Column("name", sa.Text, comment="libelle"),
    sa.Column("short_name", sa.Text, comment="libelleCourt"),
    sa.Column("starts_at", sa.DateTime(timezone=True), comment="Start instant, UTC (heureDepart)"),
    sa.Column("hippodrome_code", sa.Text, comment="course hippodrome.codeHippodrome, else the meeting's code"),
    sa.Column("distance_m", sa.Integer, comment="Distance, metres"),
    sa.Column("discipline", sa.Text, comment="PLAT, ATTELE, MONTE, HAIE, STEEPLECHASE, CROSS"),
    sa.Column("speciality", sa.Text, comment="PLAT, TROT_ATTELE, TROT_MONTE, OBSTACLE"),
    sa.Column("category", sa.Text, comment="categorieParticularite"),
    sa.Column("sex_condition", sa.Text, comment="conditionSexe"),
    sa.Column("age_condition", sa.Text, comment="conditionAge; the API typo QUATE_ is mapped to QUATRE_"),
    sa.Column("corde", sa.Text, comment="CORDE_GAUCHE, CORDE_DROITE, LIGNE_DROITE"),
    sa.Column("track_type", sa.Text, comment="typePiste; HERBE is mapped to GAZON"),
    sa.Column("going", sa.Numeric(4, 1), comment="penetrometre.valeurMesure (sent as a string with a decimal comma)"),
    sa.Column("going_label", sa.Text, comment="penetrometre.intitule"),
    sa.Column("declared_runners", sa.Integer, comment="nombreDeclaresPartants"),
    sa.Column("prize_eur", EUROS, comment="montantPrix, euros"),
    sa.Column("total_offered_eur", EUROS, comment="montantTotalOffert, euros"),
    sa.Column("status", sa.Text, comment="statut: FIN_COURSE, ARRIVEE_DEFINITIVE_COMPLETE, COURSE_ANNULEE ..."),
    sa.Column("status_category", sa.Text, comment="categorieStatut: ARRIVEE, A_PARTIR, ANNULEE, EN_COURS"),
    sa.Column("is_cancelled", sa.Boolean, nullable=False, comment="Race or its whole meeting cancelled"),
    sa.Column(
        "is_official",
        sa.Boolean,
        nullable=False,
        comment="Not cancelled and final results announced (rapportsDefinitifsDisponibles / arriveeDefinitive)",
    ),
    sa.Column("duration_s", SECONDS, comment="dureeCourse, seconds (API: milliseconds)"),
    sa.Column(
        "arrival_order",
        sa.JSON,
        comment="ordreArrivee as sent: a list of lists of horse numbers; an inner list of two is a dead heat",
    ),
    sa.Column("incidents", sa.JSON, comment="[{type, numeroParticipants}] as sent"),
    sa.Column("enquiry", sa.Text, comment="indicateurEvenementArriveeProvisoire: ENQUETE or RECLAMATION"),
    sa.Column("bet_types", sa.JSON, comment="codePari of the bets offered on this race"),
    sa.Column("conditions", sa.Text, comment="Race conditions, free text"),
    *lineage_columns(),
    comment="One row per race (course) of a day.",
)

horse = sa.Table(
    "horse",
    METADATA,
    sa.Column("horse_key", sa.Text, primary_key=True, comment="NAME-DAM-SIRE normalised; = idCheval"),
    sa.Column("pmu_horse_id", sa.Text, comment="idCheval as sent (recent responses only)"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("sex", sa.Text, comment="MALES, FEMELLES, HONGRES"),
    sa.Column("breed", sa.Text, comment="race: TROTTEUR FRANCAIS, PUR-SANG ..."),
    sa.Column("coat", sa.Text, comment="robe.libelleLong"),
    sa.Column("birth_year", sa.Integer, comment="Programme year minus age"),
    sa.Column("sire", sa.Text, comment="nomPere"),
    sa.Column("dam", sa.Text, comment="nomMere"),
    sa.Column("dam_sire", sa.Text, comment="nomPereMere"),
    sa.Column("breeder", sa.Text, comment="eleveur"),
    *lineage_columns(),
    comment="One row per horse, stable across days (last seen values).",
)

jockey = sa.Table(
    "jockey",
    METADATA,
    sa.Column("jockey_key", sa.Text, primary_key=True, comment="Name, upper case, no accents"),
    sa.Column("name", sa.Text, nullable=False, comment="Name as last sent (driver field)"),
    *lineage_columns(),
    comment="Jockeys and drivers (the API's `driver` field for every discipline).",
)

trainer = sa.Table(
    "trainer",
    METADATA,
    sa.Column("trainer_key", sa.Text, primary_key=True, comment="Name, upper case, no accents"),
    sa.Column("name", sa.Text, nullable=False, comment="Name as last sent (entraineur)"),
    *lineage_columns(),
    comment="Trainers (entraineur).",
)

race_participant = sa.Table(
    "race_participant",
    METADATA,
    *_race_key(),
    sa.Column("horse_num", sa.Integer, primary_key=True, comment="Saddle number (numPmu)"),
    sa.Column("horse_key", sa.Text, nullable=False),
    sa.Column("jockey_key", sa.Text),
    sa.Column("trainer_key", sa.Text),
    sa.Column("horse_name", sa.Text),
    sa.Column("status", sa.Text, comment="PARTANT or NON_PARTANT"),
    sa.Column("is_non_runner", sa.Boolean, nullable=False, comment="statut NON_PARTANT or incident NON_PARTANT"),
    sa.Column("incident", sa.Text, comment="NON_PARTANT, DISQUALIFIE_..., ARRETE, TOMBE ..."),
    sa.Column("is_disqualified", sa.Boolean, nullable=False),
    sa.Column("finish_position", sa.Integer, comment="ordreArrivee; dead heats share a position"),
    sa.Column("is_dead_heat", sa.Boolean, nullable=False, comment="Shares its arrival group with another horse"),
    sa.Column("age", sa.Integer),
    sa.Column("sex", sa.Text),
    sa.Column("blinkers", sa.Text, comment="oeilleres"),
    sa.Column("shoeing", sa.Text, comment="deferre (trot); typo DEFERRRE mapped; NULL = shod / n.a."),
    sa.Column("draw", sa.Integer, comment="placeCorde (flat)"),
    sa.Column("handicap_distance_m", sa.Integer, comment="Distance actually run (trot recul), metres"),
    sa.Column("weight_kg", KILOGRAMS, comment="handicapPoids, kg (API: hectograms)"),
    sa.Column("weight_condition_kg", KILOGRAMS, comment="poidsConditionMonte, kg (API: hectograms)"),
    sa.Column("handicap_rating", sa.Numeric(6, 2), comment="handicapValeur"),
    sa.Column("time_s", SECONDS, comment="tempsObtenu, seconds (API: milliseconds)"),
    sa.Column("reduction_km_s", SECONDS, comment="reductionKilometrique, seconds per km (API: milliseconds)"),
    sa.Column("distance_to_previous", sa.Text, comment="distanceChevalPrecedent.identifiant (DEAD_HEAT ...)"),
    sa.Column("career_starts", sa.Integer, comment="nombreCourses"),
    sa.Column("career_wins", sa.Integer, comment="nombreVictoires"),
    sa.Column("career_places", sa.Integer, comment="nombrePlaces"),
    sa.Column("earnings_career_eur", EUROS, comment="gainsCarriere, euros (API: cents)"),
    sa.Column("earnings_year_eur", EUROS, comment="gainsAnneeEnCours, euros (API: cents)"),
    sa.Column("musique", sa.Text, comment="Recent form string, raw"),
    sa.Column("odds", sa.Numeric(8, 2), comment="dernierRapportDirect.rapport, decimal odds for 1 euro"),
    sa.Column("reference_odds", sa.Numeric(8, 2), comment="dernierRapportReference.rapport"),
    sa.Column("owner", sa.Text, comment="proprietaire"),
    sa.Column("driver_changed", sa.Boolean),
    sa.Column("claiming_price_eur", EUROS, comment="tauxReclamation, euros (API: cents)"),
    sa.Column("stable", sa.Text, comment="ecurie (coupled entries)"),
    sa.Column("trainer_opinion", sa.Text, comment="avisEntraineur"),
    *lineage_columns(),
    comment="One row per runner (declared horse) of a race.",
)

horse_race_history = sa.Table(
    "horse_race_history",
    METADATA,
    sa.Column("horse_key", sa.Text, primary_key=True),
    sa.Column("raced_on", sa.Date, primary_key=True, comment="Local day of the past race"),
    sa.Column("hippodrome", sa.Text, primary_key=True, comment="Racecourse display name (not a code)"),
    sa.Column("race_name", sa.Text, primary_key=True, comment="nomPrix"),
    sa.Column("raced_at", sa.DateTime(timezone=True), comment="Past race date as a UTC instant"),
    sa.Column("discipline", sa.Text),
    sa.Column("prize_eur", EUROS, comment="allocation, euros"),
    sa.Column("distance_m", sa.Integer),
    sa.Column("runners", sa.Integer, comment="nbParticipants"),
    sa.Column("winner_time_s", SECONDS, comment="tempsDuPremier, seconds (API: centiseconds)"),
    sa.Column("place", sa.Integer, comment="place.place; NULL when not placed or disqualified"),
    sa.Column("place_raw", sa.Text, comment="place.rawValue"),
    sa.Column("finish_status", sa.Text, comment="PLACE, NON_PLACE, DISQUALIFIE"),
    sa.Column("jockey_name", sa.Text, comment="nomJockey"),
    sa.Column("jockey_weight_kg", KILOGRAMS, comment="poidsJockey"),
    sa.Column("reduction_km_s", SECONDS, comment="reductionKilometrique, seconds per km (API: centiseconds)"),
    sa.Column("distance_to_previous", sa.Text, comment="distanceAvecPrecedent"),
    sa.Column("distance_covered_m", sa.Integer, comment="distanceParcourue"),
    sa.Column("blinkers", sa.Text, comment="oeillere"),
    *lineage_columns(),
    comment="One row per (horse, past race) from performances-detaillees; the horse's own line (itsHim).",
)

race_bet = sa.Table(
    "race_bet",
    METADATA,
    *_race_key(),
    sa.Column("bet_type_code", sa.Text, primary_key=True, comment="typePari as sent (E_ / _INTERNATIONAL kept)"),
    sa.Column("bet_type", sa.Text, nullable=False, comment="Canonical type: E_ and _INTERNATIONAL removed"),
    sa.Column("is_internet_pool", sa.Boolean, nullable=False, comment="E_ (internet) pool"),
    sa.Column("is_international", sa.Boolean, nullable=False),
    sa.Column("family", sa.Text, comment="famillePari"),
    sa.Column("base_stake_eur", EUROS, comment="miseBase, euros (API: cents)"),
    sa.Column("refunded", sa.Boolean, comment="rembourse"),
    sa.Column("audience", sa.Text),
    sa.Column("dividend_unit", sa.Text, comment="PourUnEuro or PourUneMiseDeBase"),
    sa.Column("line_count", sa.Integer, comment="Dividend lines"),
    *lineage_columns(),
    comment="One row per race and bet type of the final reports (rapports-definitifs).",
)

bet_report = sa.Table(
    "bet_report",
    METADATA,
    *_race_key(),
    sa.Column("bet_type_code", sa.Text, primary_key=True, comment="typePari as sent"),
    sa.Column("label", sa.Text, primary_key=True, comment="libelle (Ordre, Désordre, Bonus 4sur5 ...)"),
    sa.Column("combination", sa.Text, primary_key=True, comment="combinaison, e.g. 7-3 or 5-NP"),
    sa.Column("bet_type", sa.Text, nullable=False, comment="Canonical type"),
    sa.Column("horse_nums", sa.JSON, comment="Horse numbers of the combination (NP left out)"),
    sa.Column("has_non_runner", sa.Boolean, nullable=False, comment="Combination contains NP"),
    sa.Column("dividend_per_euro_eur", EUROS, comment="dividendePourUnEuro, euros returned for 1 euro"),
    sa.Column("dividend_per_base_stake_eur", EUROS, comment="dividendePourUneMiseDeBase, euros per base stake"),
    sa.Column("dividend_unit", sa.Text),
    sa.Column("winning_stakes", sa.Numeric(14, 2), comment="nombreGagnants (winning stakes, fractional)"),
    *lineage_columns(),
    comment="One row per dividend line of a bet type.",
)

TABLES = [daily_program, race_meeting, race, horse, jockey, trainer, race_participant, horse_race_history]
TABLES += [race_bet, bet_report]

# -- the loading contract of each asset's tables (see lib.contract) ---------------------------------------
_RACES = ("meeting_num", "race_num")  # a load covers the races it fetched

PROGRAMME_LOAD = (
    TableContract(daily_program, "upsert", day_column="program_date"),
    TableContract(race_meeting, "replace_window", day_column="program_date"),
    TableContract(race, "replace_window", day_column="program_date"),
)
PARTICIPANT_LOAD = (
    TableContract(horse),  # dimensions span days: upsert, never deleted
    TableContract(jockey),
    TableContract(trainer),
    TableContract(race_participant, "replace_window", day_column="program_date", scope_columns=_RACES),
)
PERFORMANCE_LOAD = (TableContract(horse_race_history),)
RAPPORT_LOAD = (
    TableContract(race_bet, "replace_window", day_column="program_date", scope_columns=_RACES),
    TableContract(bet_report, "replace_window", day_column="program_date", scope_columns=_RACES),
)
