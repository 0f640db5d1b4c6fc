-- Every source record that carries personal data (int_persons__records: CRM contact, shop
-- account, guest checkout email) with the person it belongs to: the input of golden-record
-- survivorship.
-- Incremental from its inputs (stamped, macros/changed_rows.sql): a night computes the records
-- written since this table last was, those identity gave another person, and those gone;
-- every other row stays (writing all 1.5M rows at 1M people cost more than the join).
{{ changed_rows_config(['source', 'source_id'], 'source_priority', stamped=true) }}
{%- set since = changed_since() %}

with
{% if since is not none -%}
-- The records whose row may differ from the table's: only those are computed and compared.
scope as (
    select source, source_id from {{ ref('int_persons__records') }}
    where changed_at > timestamp '{{ since }}'
    union
    -- Another person, or none (the record left identity); a record new to identity is new
    -- to int_persons__records too.
    select previous.source, previous.source_id
    from {{ this }} as previous
    left join {{ ref('int_identity__id_assignment') }} as id_assignment
        on previous.source = id_assignment.source and previous.source_id = id_assignment.source_id
    where id_assignment.unified_id is distinct from previous.unified_id
    union
    -- A record gone (erased, or no longer a guest).
    select previous.source, previous.source_id from {{ this }} as previous
    where not exists (
        select 1 from {{ ref('int_persons__records') }} as records
        where records.source = previous.source and records.source_id = previous.source_id)
),

{% endif -%}
person_records as (
    select * from {{ ref('int_persons__records') }}
),

records as (
    select * from person_records
    {%- if since is not none %}
    where exists (
        select 1 from scope
        where scope.source = person_records.source and scope.source_id = person_records.source_id)
    {%- endif %}
),

id_assignment as (
    select * from {{ ref('int_identity__id_assignment') }}
),

final as (
    select
        id_assignment.unified_id,
        records.source,
        records.source_id,
        records.source_priority,
        records.email,
        records.is_email_valid,
        records.email_sha256,
        records.first_name,
        records.first_name_clean,
        records.last_name,
        records.last_name_clean,
        records.phone_e164,
        records.street,
        records.city,
        records.postcode,
        records.country,
        records.language,
        records.birth_date,
        records.gender,
        records.is_opted_in,
        records.opted_in_at,
        records.unsubscribed_at,
        records.created_at,
        records.updated_at,
        {{ changed_at_column() }}
    from records
    inner join id_assignment
        on records.source = id_assignment.source
        and records.source_id = id_assignment.source_id
)

-- Written as its changes (changed_rows.sql).
{{ changed_rows('final', ['source', 'source_id'], scope=('scope' if since is not none else none), stamped=true) }}
