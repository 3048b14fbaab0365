-- The central audit store: every replica's chain, verified by the store itself on arrival.
--
-- Replicas call ingest_records and ingest_checkpoint only. Each record arrives as its stored form
-- (canonical encoding ‖ prev_hash ‖ hash, as in the trail file); the store recomputes the hash
-- (SHA-256(0x00 ‖ prev_hash ‖ canonical)), decodes the query columns from the very bytes it
-- hashed, and checks the link to the record before it. What does not hold is kept aside in
-- `quarantine` with the reason, never dropped. Records 0 .. verified_next-1 of a chain are in
-- place and linked; a record that arrives past a gap waits in `records` until the gap is filled.

CREATE TABLE chains (
    chain_id      text PRIMARY KEY,
    -- Records 0 .. verified_next-1 are present and each links to the one before it.
    verified_next bigint NOT NULL DEFAULT 0,
    -- The hash of record verified_next-1 (32 zero bytes before the first).
    head_hash     bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex'),
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_received timestamptz
);

CREATE TABLE records (
    chain_id          text NOT NULL REFERENCES chains (chain_id),
    seq               bigint NOT NULL,
    at                timestamptz NOT NULL,
    time_us           bigint NOT NULL,
    request_id        text NOT NULL,
    unit_code         text NOT NULL,
    cert_fingerprint  text NOT NULL,
    peer_address      text NOT NULL,
    officer_code      text NOT NULL,
    roles             text[] NOT NULL,
    method            text NOT NULL,
    procedure_code    text NOT NULL,
    dossier_id        text NOT NULL,
    purpose           text NOT NULL,
    citizen_pseudonym text NOT NULL,
    citizen_masked_id text NOT NULL,
    fields_disclosed  text[] NOT NULL,
    outcome_code      integer NOT NULL,
    outcome_reason    text NOT NULL,
    outcome_message   text NOT NULL,
    latency_us        bigint NOT NULL,
    prev_hash         bytea NOT NULL,
    hash              bytea NOT NULL,
    -- The canonical encoding: the bytes that were hashed.
    canonical         bytea NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, seq)
);

-- The reviewers' questions, each answered from an index: who looked at this citizen, what did
-- this officer, this unit, this procedure do, what was refused — over a time range.
CREATE INDEX records_by_citizen ON records (citizen_pseudonym, time_us) WHERE citizen_pseudonym <> '';
CREATE INDEX records_by_officer ON records (officer_code, time_us);
CREATE INDEX records_by_unit ON records (unit_code, time_us);
CREATE INDEX records_by_procedure ON records (procedure_code, time_us);
CREATE INDEX records_refused ON records (outcome_reason, time_us) WHERE outcome_code <> 0;
-- What was refused, by unit, officer and procedure: a small share of the records, read without
-- walking the served ones.
CREATE INDEX records_refused_by_unit ON records (unit_code, time_us) WHERE outcome_code <> 0;
CREATE INDEX records_refused_by_officer ON records (officer_code, time_us) WHERE outcome_code <> 0;
CREATE INDEX records_refused_by_procedure ON records (procedure_code, outcome_reason, time_us) WHERE outcome_code <> 0;
CREATE INDEX records_by_time ON records (time_us);

CREATE TABLE checkpoints (
    chain_id    text NOT NULL REFERENCES chains (chain_id),
    seq         bigint NOT NULL,
    record_hash bytea NOT NULL,
    at          timestamptz NOT NULL,
    key_id      text NOT NULL,
    signature   bytea NOT NULL,
    -- The stored form (signed message ‖ signature), for verification with the public key.
    body        bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, seq)
);

-- What the store refused: forged, reordered, conflicting or malformed records and checkpoints.
CREATE TABLE quarantine (
    id          bigserial PRIMARY KEY,
    chain_id    text NOT NULL,
    seq         bigint,
    kind        text NOT NULL CHECK (kind IN ('record', 'checkpoint')),
    reason      text NOT NULL,
    body        bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_by_chain ON quarantine (chain_id, seq);

-- Big-endian integers and length-prefixed strings of the canonical encoding.
CREATE FUNCTION lt_u32(b bytea, o integer) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (get_byte(b, o)::bigint << 24) | (get_byte(b, o + 1)::bigint << 16)
         | (get_byte(b, o + 2)::bigint << 8) | get_byte(b, o + 3)::bigint
$$;

CREATE FUNCTION lt_i64(b bytea, o integer) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    IF o + 8 > length(b) THEN
        RAISE EXCEPTION 'truncated integer at byte %', o;
    END IF;
    RETURN ('x' || encode(substring(b FROM o + 1 FOR 8), 'hex'))::bit(64)::bigint;
END
$$;

-- Reads the string at byte o; returns it and the offset after it.
CREATE FUNCTION lt_str(b bytea, o integer, OUT v text, OUT next integer)
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    n bigint := lt_u32(b, o);
BEGIN
    IF o + 4 + n > length(b) THEN
        RAISE EXCEPTION 'truncated string at byte %', o;
    END IF;
    v := convert_from(substring(b FROM o + 5 FOR n::integer), 'UTF8');
    next := o + 4 + n::integer;
END
$$;

CREATE FUNCTION lt_list(b bytea, o integer, OUT v text[], OUT next integer)
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    n bigint := lt_u32(b, o);
    s record;
BEGIN
    IF n > length(b) THEN
        RAISE EXCEPTION 'impossible list length at byte %', o;
    END IF;
    v := ARRAY[]::text[];
    next := o + 4;
    FOR i IN 1 .. n LOOP
        s := lt_str(b, next);
        v := v || s.v;
        next := s.next;
    END LOOP;
END
$$;

-- Takes a batch of one chain's records (stored forms), in any order; returns how many were
-- accepted, already present, and refused, and the chain's verified prefix after the batch.
CREATE FUNCTION ingest_records(p_chain text, p_items bytea[],
    OUT accepted integer, OUT duplicates integer, OUT refused integer, OUT verified_next bigint)
LANGUAGE plpgsql AS $$
DECLARE
    item bytea;
    n integer;
    canon bytea;
    prev bytea;
    h bytea;
    o integer;
    s record;
    r records%ROWTYPE;
    existing bytea;
    before bytea;
    c chains%ROWTYPE;
    why text;
BEGIN
    accepted := 0; duplicates := 0; refused := 0;
    INSERT INTO chains (chain_id) VALUES (p_chain) ON CONFLICT DO NOTHING;
    -- One shipper at a time per chain.
    SELECT * INTO c FROM chains WHERE chain_id = p_chain FOR UPDATE;
    FOREACH item IN ARRAY p_items LOOP
        why := NULL;
        r := NULL;
        n := length(item);
        IF n < 1 + 4 + 8 + 64 THEN
            why := 'malformed: too short to be a record';
        ELSE
            canon := substring(item FROM 1 FOR n - 64);
            prev := substring(item FROM n - 63 FOR 32);
            h := substring(item FROM n - 31 FOR 32);
            IF sha256('\x00'::bytea || prev || canon) <> h THEN
                why := 'forged: the hash does not match the record''s contents';
            END IF;
        END IF;
        IF why IS NULL THEN
            BEGIN
                IF get_byte(canon, 0) <> 1 THEN
                    RAISE EXCEPTION 'unknown record version %', get_byte(canon, 0);
                END IF;
                s := lt_str(canon, 1); r.chain_id := s.v; o := s.next;
                r.seq := lt_i64(canon, o); o := o + 8;
                r.time_us := lt_i64(canon, o); o := o + 8;
                s := lt_str(canon, o); r.request_id := s.v; o := s.next;
                s := lt_str(canon, o); r.unit_code := s.v; o := s.next;
                s := lt_str(canon, o); r.cert_fingerprint := s.v; o := s.next;
                s := lt_str(canon, o); r.peer_address := s.v; o := s.next;
                s := lt_str(canon, o); r.officer_code := s.v; o := s.next;
                s := lt_list(canon, o); r.roles := s.v; o := s.next;
                s := lt_str(canon, o); r.method := s.v; o := s.next;
                s := lt_str(canon, o); r.procedure_code := s.v; o := s.next;
                s := lt_str(canon, o); r.dossier_id := s.v; o := s.next;
                s := lt_str(canon, o); r.purpose := s.v; o := s.next;
                s := lt_str(canon, o); r.citizen_pseudonym := s.v; o := s.next;
                s := lt_str(canon, o); r.citizen_masked_id := s.v; o := s.next;
                s := lt_list(canon, o); r.fields_disclosed := s.v; o := s.next;
                r.outcome_code := lt_u32(canon, o)::bit(32)::integer; o := o + 4;
                s := lt_str(canon, o); r.outcome_reason := s.v; o := s.next;
                s := lt_str(canon, o); r.outcome_message := s.v; o := s.next;
                r.latency_us := lt_i64(canon, o); o := o + 8;
                IF o <> length(canon) THEN
                    RAISE EXCEPTION 'trailing bytes';
                END IF;
            EXCEPTION WHEN others THEN
                why := 'malformed: ' || SQLERRM;
            END;
        END IF;
        IF why IS NULL AND r.chain_id <> p_chain THEN
            why := format('misdirected: the record belongs to chain %s', left(r.chain_id, 64));
        END IF;
        IF why IS NULL AND r.seq < 0 THEN
            why := 'malformed: negative sequence';
        END IF;
        IF why IS NULL THEN
            SELECT records.hash INTO existing FROM records
                WHERE records.chain_id = p_chain AND records.seq = r.seq;
            IF FOUND THEN
                IF existing = h THEN
                    duplicates := duplicates + 1;
                    CONTINUE;
                END IF;
                why := 'conflicting: the store already holds a different record with this sequence';
            END IF;
        END IF;
        IF why IS NULL THEN
            IF r.seq = 0 THEN
                IF prev <> decode(repeat('00', 32), 'hex') THEN
                    why := 'reordered: record 0 must follow the genesis hash';
                END IF;
            ELSE
                SELECT records.hash INTO before FROM records
                    WHERE records.chain_id = p_chain AND records.seq = r.seq - 1;
                IF FOUND AND before <> prev THEN
                    why := format('reordered or forged: it does not link to record %s', r.seq - 1);
                END IF;
            END IF;
        END IF;
        IF why IS NOT NULL THEN
            INSERT INTO quarantine (chain_id, seq, kind, reason, body)
                VALUES (p_chain, r.seq, 'record', why, item);
            refused := refused + 1;
            CONTINUE;
        END IF;
        r.at := to_timestamp(r.time_us / 1000000.0);
        r.prev_hash := prev;
        r.hash := h;
        r.canonical := canon;
        r.received_at := now();
        INSERT INTO records VALUES (r.*);
        accepted := accepted + 1;
    END LOOP;
    -- Extend the verified prefix over what has arrived; a stored record that does not link to
    -- the prefix (it came past a gap and the gap's record says otherwise) is moved aside.
    LOOP
        SELECT records.prev_hash, records.hash INTO prev, h FROM records
            WHERE records.chain_id = p_chain AND records.seq = c.verified_next;
        EXIT WHEN NOT FOUND;
        IF prev <> c.head_hash THEN
            INSERT INTO quarantine (chain_id, seq, kind, reason, body)
                SELECT chain_id, seq, 'record',
                       format('reordered or forged: it does not link to record %s', seq - 1),
                       canonical || prev_hash || hash
                FROM records WHERE records.chain_id = p_chain AND records.seq = c.verified_next;
            DELETE FROM records WHERE records.chain_id = p_chain AND records.seq = c.verified_next;
            refused := refused + 1;
            EXIT;
        END IF;
        c.head_hash := h;
        c.verified_next := c.verified_next + 1;
    END LOOP;
    UPDATE chains SET verified_next = c.verified_next, head_hash = c.head_hash,
        last_received = now() WHERE chain_id = p_chain;
    verified_next := c.verified_next;
END
$$;

-- Takes one checkpoint (stored form: signed message ‖ signature). The signature is checked by
-- reviewers with the public key (`auditctl verify --central`); the store checks that it names
-- the hash of the record it covers, when that record is present.
CREATE FUNCTION ingest_checkpoint(p_chain text, p_body bytea) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    domain_len integer := length('lienthong-audit-checkpoint-v1');
    o integer;
    s record;
    chain text;
    cp_seq bigint;
    record_hash bytea;
    time_us bigint;
    key_id text;
    sig bytea;
    stored bytea;
    why text;
BEGIN
    INSERT INTO chains (chain_id) VALUES (p_chain) ON CONFLICT DO NOTHING;
    BEGIN
        IF get_byte(p_body, 0) <> 1
           OR substring(p_body FROM 2 FOR domain_len) <> convert_to('lienthong-audit-checkpoint-v1', 'UTF8') THEN
            RAISE EXCEPTION 'not a checkpoint';
        END IF;
        o := 1 + domain_len;
        s := lt_str(p_body, o); chain := s.v; o := s.next;
        cp_seq := lt_i64(p_body, o); o := o + 8;
        record_hash := substring(p_body FROM o + 1 FOR 32); o := o + 32;
        time_us := lt_i64(p_body, o); o := o + 8;
        s := lt_str(p_body, o); key_id := s.v; o := s.next;
        sig := substring(p_body FROM o + 1 FOR 64); o := o + 64;
        IF o <> length(p_body) OR length(sig) <> 64 OR length(record_hash) <> 32 THEN
            RAISE EXCEPTION 'wrong length';
        END IF;
    EXCEPTION WHEN others THEN
        why := 'malformed: ' || SQLERRM;
    END;
    IF why IS NULL AND chain <> p_chain THEN
        why := format('misdirected: the checkpoint belongs to chain %s', left(chain, 64));
    END IF;
    IF why IS NULL THEN
        SELECT records.hash INTO stored FROM records
            WHERE records.chain_id = p_chain AND records.seq = cp_seq;
        IF FOUND AND stored <> record_hash THEN
            why := format('forged: it names a hash record %s does not have', cp_seq);
        END IF;
    END IF;
    IF why IS NULL THEN
        SELECT checkpoints.body INTO stored FROM checkpoints
            WHERE checkpoints.chain_id = p_chain AND checkpoints.seq = cp_seq;
        IF FOUND THEN
            IF stored = p_body THEN
                RETURN true;
            END IF;
            why := 'conflicting: the store already holds a different checkpoint at this sequence';
        END IF;
    END IF;
    IF why IS NOT NULL THEN
        INSERT INTO quarantine (chain_id, seq, kind, reason, body)
            VALUES (p_chain, cp_seq, 'checkpoint', why, p_body);
        RETURN false;
    END IF;
    INSERT INTO checkpoints (chain_id, seq, record_hash, at, key_id, signature, body)
        VALUES (p_chain, cp_seq, record_hash, to_timestamp(time_us / 1000000.0), key_id, sig, p_body);
    RETURN true;
END
$$;

-- Each chain as the store holds it: its verified prefix, whether a gap follows it, what was
-- refused, its last checkpoint.
CREATE VIEW chain_status AS
SELECT c.chain_id,
       c.verified_next,
       (SELECT max(seq) FROM records r WHERE r.chain_id = c.chain_id) AS max_seq,
       (SELECT count(*) FROM records r WHERE r.chain_id = c.chain_id AND r.seq > c.verified_next) AS waiting_past_gap,
       (SELECT count(*) FROM quarantine q WHERE q.chain_id = c.chain_id) AS quarantined,
       (SELECT max(seq) FROM checkpoints k WHERE k.chain_id = c.chain_id) AS last_checkpoint,
       c.last_received
FROM chains c;
