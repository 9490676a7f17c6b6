from tortoise import BaseDBAsyncClient

from migrations.first_versions import first_versions_sql

# SQLite's ALTER TABLE can neither make messages.seq nullable nor drop the UNIQUE of
# reply_to_id (now a variant's link, several per user message): the table is rebuilt as
# https://sqlite.org/lang_altertable.html ("making other kinds of table schema changes")
# says: foreign keys off, outside the migration's transaction, then one transaction of
# its own for the whole migration. Columns are listed by name: the new table orders them
# as the models do.
RUN_IN_TRANSACTION = False
_COLUMNS = (
    '"id", "seq", "type", "content", "metadata", "created_at", "client_message_id",'
    ' "request_digest", "reply_to_id", "session_id"'
)


def _rebuild_messages(*, seq: str, reply_to: str) -> str:
    return f"""
        CREATE TABLE "messages_rebuilt" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "seq" {seq},
    "type" VARCHAR(10) NOT NULL /* USER: user\nAI: ai */,
    "content" TEXT NOT NULL,
    "metadata" JSON,
    "created_at" TIMESTAMP NOT NULL,
    "client_message_id" VARCHAR(200),
    "request_digest" VARCHAR(64),
    "reply_to_id" CHAR(36) {reply_to}REFERENCES "messages" ("id") ON DELETE SET NULL,
    "session_id" CHAR(36) NOT NULL REFERENCES "chat_sessions" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_messages_session_4350d2" UNIQUE ("session_id", "seq"),
    CONSTRAINT "uid_messages_session_c18cda" UNIQUE ("session_id", "client_message_id")
);
        INSERT INTO "messages_rebuilt" ({_COLUMNS}) SELECT {_COLUMNS} FROM "messages";
        DROP TABLE "messages";
        ALTER TABLE "messages_rebuilt" RENAME TO "messages";"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    rebuilt = _rebuild_messages(seq="INT /* null for a replaced reply (a variant) */", reply_to="")
    script = _UPGRADE.replace("{rebuild}", rebuilt)
    script = script.replace("{first_versions}", await first_versions_sql(db))
    return "PRAGMA foreign_keys = OFF; BEGIN;" + script + (
        " COMMIT; PRAGMA foreign_keys = ON;"
    )


_UPGRADE = """
        {rebuild}
        CREATE TABLE IF NOT EXISTS "usage_records" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "user_id" CHAR(36) NOT NULL,
    "model_config_id" CHAR(36) NOT NULL,
    "session_id" CHAR(36),
    "message_id" CHAR(36) /* the stored reply; null if it failed */,
    "failed" INT NOT NULL,
    "prompt_tokens" INT NOT NULL,
    "completion_tokens" INT NOT NULL,
    "latency_ms" REAL
) /* One reply asked of a model, counted as it ends (stored, cancelled or failed). */;
CREATE INDEX IF NOT EXISTS "idx_usage_recor_created_abe4dd" ON "usage_records" ("created_at");
CREATE INDEX IF NOT EXISTS "idx_usage_recor_user_id_2993a1" ON "usage_records" ("user_id", "created_at");
CREATE INDEX IF NOT EXISTS "idx_usage_recor_model_c_3ead24" ON "usage_records" ("model_config_id", "created_at");
        CREATE TABLE IF NOT EXISTS "model_config_versions" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "version" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "actor_id" VARCHAR(36),
    "changed_fields" JSON NOT NULL,
    "snapshot" JSON NOT NULL /* every field of the config, never a secret */,
    "config_id" CHAR(36) NOT NULL REFERENCES "model_configs" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_model_confi_config__d26b9f" UNIQUE ("config_id", "version")
) /* A model config as one change (create, update, rollback) left it. */;
        CREATE TABLE IF NOT EXISTS "message_feedback" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "rating" VARCHAR(10) NOT NULL /* UP: up\nDOWN: down */,
    "note" TEXT,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "message_id" CHAR(36) NOT NULL REFERENCES "messages" ("id") ON DELETE CASCADE,
    "user_id" CHAR(36) NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_message_fee_message_d0970c" UNIQUE ("message_id", "user_id")
) /* One user's rating of an AI message, with an optional note; cleared by deleting it. */;
CREATE INDEX IF NOT EXISTS "idx_message_fee_user_id_d201df" ON "message_feedback" ("user_id");
        ALTER TABLE "chat_sessions" ADD "fork_key" VARCHAR(200);
        ALTER TABLE "chat_sessions" ADD "forked_from_id" CHAR(36);
        ALTER TABLE "chat_sessions" ADD "archived" INT NOT NULL DEFAULT 0;
        ALTER TABLE "chat_sessions" ADD "title" VARCHAR(200);
        ALTER TABLE "chat_sessions" ADD "fork_digest" VARCHAR(64);
        CREATE UNIQUE INDEX "uid_chat_sessio_user_id_cf9ec0" ON "chat_sessions" ("user_id", "fork_key");
        CREATE INDEX "idx_chat_sessio_user_id_70d85b" ON "chat_sessions" ("user_id", "archived", "created_at");
        CREATE INDEX "idx_messages_reply_t_458d3d" ON "messages" ("reply_to_id");
        -- Written by hand (the models cannot describe them; tests/migrations/schema.py):
        -- one reply per user message in the history (replaced ones, seq NULL, are variants);
        CREATE UNIQUE INDEX IF NOT EXISTS "uid_messages_current_reply" ON "messages" ("reply_to_id") WHERE "seq" IS NOT NULL;
        -- the full-text index of db/services/search.py. Its rows are keyed by an integer
        -- that VACUUM keeps (messages' own rowid it may renumber), and kept in step with
        -- messages by triggers, so by the transaction that stores or deletes a message;
        CREATE TABLE IF NOT EXISTS "message_search_ids" ("id" INTEGER PRIMARY KEY, "message_id" CHAR(36) NOT NULL UNIQUE);
        CREATE VIRTUAL TABLE IF NOT EXISTS "message_search" USING fts5("content", tokenize = 'porter unicode61');
        CREATE TRIGGER IF NOT EXISTS "messages_search_insert" AFTER INSERT ON "messages" BEGIN
            INSERT INTO "message_search_ids" ("message_id") VALUES (new."id");
            INSERT INTO "message_search" ("rowid", "content") VALUES (last_insert_rowid(), new."content");
        END;
        CREATE TRIGGER IF NOT EXISTS "messages_search_delete" AFTER DELETE ON "messages" BEGIN
            DELETE FROM "message_search" WHERE "rowid" = (SELECT "id" FROM "message_search_ids" WHERE "message_id" = old."id");
            DELETE FROM "message_search_ids" WHERE "message_id" = old."id";
        END;
        CREATE TRIGGER IF NOT EXISTS "messages_search_update" AFTER UPDATE OF "content" ON "messages" BEGIN
            UPDATE "message_search" SET "content" = new."content" WHERE "rowid" = (SELECT "id" FROM "message_search_ids" WHERE "message_id" = new."id");
        END;
        INSERT INTO "message_search_ids" ("message_id") SELECT "id" FROM "messages" ORDER BY "session_id", "seq";
        INSERT INTO "message_search" ("rowid", "content") SELECT k."id", m."content" FROM "message_search_ids" AS k JOIN "messages" AS m ON m."id" = k."message_id";
        -- every config's current values as its first recorded version (migrations/first_versions.py);
        {first_versions}
        -- the replies stored so far, counted as usage (failed ones were never stored).
        INSERT INTO "usage_records" ("created_at", "user_id", "model_config_id", "session_id", "message_id", "failed", "prompt_tokens", "completion_tokens", "latency_ms")
        SELECT m."created_at", s."user_id", COALESCE(json_extract(m."metadata", '$.model_config_id'), s."model_config_id"), s."id", m."id", 0,
            COALESCE(json_extract(m."metadata", '$.usage.prompt_tokens'), 0),
            COALESCE(json_extract(m."metadata", '$.usage.completion_tokens'), 0),
            json_extract(m."metadata", '$.latency_ms')
        FROM "messages" AS m JOIN "chat_sessions" AS s ON s."id" = m."session_id" WHERE m."type" = 'ai';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    rebuilt = _rebuild_messages(seq="INT NOT NULL", reply_to="UNIQUE ")
    return "PRAGMA foreign_keys = OFF; BEGIN;" + _DOWNGRADE.replace("{rebuild}", rebuilt) + (
        " COMMIT; PRAGMA foreign_keys = ON;"
    )


_DOWNGRADE = """
        DROP TRIGGER IF EXISTS "messages_search_insert";
        DROP TRIGGER IF EXISTS "messages_search_delete";
        DROP TRIGGER IF EXISTS "messages_search_update";
        DROP TABLE IF EXISTS "message_search";
        DROP TABLE IF EXISTS "message_search_ids";
        DROP INDEX IF EXISTS "uid_messages_current_reply";
        DROP INDEX IF EXISTS "idx_messages_reply_t_458d3d";
        DELETE FROM "messages" WHERE "seq" IS NULL;
        {rebuild}
        DROP INDEX IF EXISTS "idx_chat_sessio_user_id_70d85b";
        DROP INDEX IF EXISTS "uid_chat_sessio_user_id_cf9ec0";
        ALTER TABLE "chat_sessions" DROP COLUMN "fork_key";
        ALTER TABLE "chat_sessions" DROP COLUMN "forked_from_id";
        ALTER TABLE "chat_sessions" DROP COLUMN "archived";
        ALTER TABLE "chat_sessions" DROP COLUMN "title";
        ALTER TABLE "chat_sessions" DROP COLUMN "fork_digest";
        DROP TABLE IF EXISTS "message_feedback";
        DROP TABLE IF EXISTS "model_config_versions";
        DROP TABLE IF EXISTS "usage_records";
"""


MODELS_STATE = (
    "eJztXW1z2zYS/isYfTl7RnUTO3Jy9s3NyI7c6OqXnGw3vdYdGRIhCWcKUAnIiqaX/35Y8EV8"
    "F6k30wy/JBaABclnQWD3wWL5V23MDWKKg3tBrNoJ+qvG8JioPwLldVTDk8miFAok7pm64VS1"
    "0CW4J6SF+1IVDrApiCoyiOhbdCIpZ9D0lo8JZwTNRhzxGROoP8ISCSKEaiBOEZ7KEWGS9rEk"
    "As2oHKHm5zZ6InOBuFVXcoQhQYeMGIgyuKbB++qilA033/0DkyOLT4cjhBmiBgjKOZpY/Fn9"
    "gNYgT6VAkj8RdbG9AZ8yA/Xm6JEKMSXWoxI00KOY9v5L+vJx/wBueMron1PSlXxI1M0A5L//"
    "XrPbQ7XTuPbHH+oHZQb5SoTdpm8RddtGFzuVk6fugBLTCCiNGtCJLu/K+USX3d+3P17oloBX"
    "r9vn5nTMFq0ncznizGs+nVLjAGSgbkgYseCyPp2yqWk6uneL7IdSBdKaEu/GjUWBQQZ4asLI"
    "qP1jMGV9GBBIXwn+efdP59Z8zbrd65u77m3rrtutRQYS3EJI+U5RXylaDULKJMD21ze73wUg"
    "urQGFzj/1OzsHR3vawi4kENLV2q4at+0IJbYFtUqWKCs/4/gfD7CVjzObvsQ0upGV8HYLViA"
    "vHjbXPhcgLYAaW2Mv3ZNwoZypH6+ffMmBeNfmh0Ns2qlceZqerAnjWun6tCuA7wX+FrcTMC3"
    "xaZjjXFb3RNmfRLB2pXdHdZ6Asw5gGv3t63OCQLJB9b8eNW+PkHYGEfntGw6yKSCFA2EFeCb"
    "ayJq+KhqJB2T+KEelAwpwXBED9w/XuPwVw9o3DBz7kxuKdDfta9at3fNq89wubEQf5oav+Zd"
    "C2oOdek8VLp3HFKT1wn60r77hOAn+u3muhWetrx2d7/V4J7UWse7jM+62PDNw26pi1pA6wYV"
    "APoqag+JbkDvzg0XRe2vRM0uJql6XlgbWRewhcRK02rBdBmcPQ8bjQzTp2qVOH/quuAE6ppx"
    "OTD2iVQgJ4IMlu/gyWeVQUEP959m2DK6gZqFNvCEdsHIj6rjzJG8+LlDTKyfMYq/4wk1J/Rn"
    "Mn+FS9Y3d6i5pYulyzdiHS9pPYzU8Ja3dk9lBWpAiAEDbj2grhRIeEgufJ2VBSx4I/khT3pH"
    "o1Xjw3G4BDMFjuFcG64UfAdjeIrF25nMVPjngeVkRRP1CLaIhZRNq71/bJ4iriw/hNHtp+YP"
    "h41jZNAhERLxAVLOPBJENZWICiQkV0IHEYZiQ33GkAgRvgB8i67y8Cuy4GXJAjXgurZK81gD"
    "QanNOLPL8d6ZPXD8LoM5cPwu0RqAqqDFNbHIgH7NA/FCosi8jHocS80GffUYarYilqgjyZFF"
    "+nzIqCBq3niyp73crMFxFtYg7Kf4WIPjsAoUMsTMowFPYIdkzbYmjx3QYhUrk4x+eVkZEwvZ"
    "VYv5KnoPy1a8TJF5GYs886eV9ByUrLRcZC27dnkO09snskn7u7hKXWJuR0igILpRaC+U50SH"
    "TDmIkc2jePfc3fV+nZBGfHJVbOGZ5wL6B5R6dvXERNqmWvP2vPmxVfuWzKpt07u/gv/OORvQ"
    "YS3GxfdX19P8fF0EKKiWGZ39T3xm29W4P0IQQ9BsI93NKXp8Vla3avYITnhvOp4QvclPVPEc"
    "7HI2VF46R32TKodeqC56U2rG+P7buUQWKoAKb6hVbMDLsgFu+Eg+R3UhU2RXdUVfqZHFVWok"
    "e0qNiKNkv/95ozSCUiUE+jCTU3qY4pQeRp1SGzVn/soPt0+wIgGykAATbKm/pBNyFwS7yeb/"
    "ur25TphFAoJhH4H2JfofMqnNN24F9MXsDauXpEwcwGVfYgIHlAL+ggv53lXz17A2zi9vzsIz"
    "PXRwFtJMDwvSnVq5GDC/TPl2fRuZXoBGygvQiL4AziZOl7DnPEiHxMoH9lZmd5/lGMH6jHOT"
    "YJYUMeIXDKHdU5Lbmma8kt3OKGc3N5eBGeWsfRfC+f7qrKWmew2/akRtl6t9fRfCPHEtbTMZ"
    "D3byIgou4JaAfrutUT2EO/jh8O279+8+HB2/+6Ca6Lv0St6n6CEKZ8WaJ0NdXtZ8OjFW1HpQ"
    "stJ6UbQeQ6564Sa5I8KcGXPNaCcfIfXLYgp+ZcOhig4rcsBTzBBLZ0Z9AzEbQdr1vwtZoqK0"
    "MLKFERaaynQ4yj17yawjexKtI4ubJgCxj0wykIjKuJCo9TuMPVTlPJ7NVLomUvhcVS469IwO"
    "E22wWEI0xvxyFq/ixunY5tffDw+Pjt4fvjk6/tB49/5948Mbzw6LVqUZZGftn8AmC6wIrpGW"
    "TJO+Eht4+3qozODKIFrDDFZTOY/fbU5hSnwy5aNJjrKEvR0lh70dRcLe7KXKcOexCNKprGxU"
    "uBjMLFyvNMysYHgiRjxm5kvVjV9s91pZIVTU3i/WT+iGj9tGUB0xqEPYCScPG2HFUFPAYMu6"
    "ER0QqqJj0qNj+l7wxJrxMaFQjNeJ7dIwmcDYKlKgjN+RjnEHQ352sh8I+TG6ft8+i/+nUAFj"
    "W/v6MM2AuwYBRXZCDPjld+jiHL4Veoj18PyhdNx6gv2dmMQZvlb+HBp1FKjCVn9En0lss/Dv"
    "gPtcHbF58aCayrdJNn7L69tUFH/ZtJ5E8fu1LqlMSg4Tr2xPoHy+7Fa2/P0LYY4Nf7/YS2/3"
    "x5suBdvmB4sFHH+Lj3O6PFHJNUyGgg3wdQyEILZd51xk1nnCL1NNFZmmCg1Z/rPNIbHygb35"
    "0836IJ8gf+bYEPGL7G5H5M22AN7wdoicWgoPSNyYy5YISJVv4G6eHNeIka8TqibrFSz1GPHq"
    "dGNxrPOoUxamRnKYNTGiFZ8bep2qw6PV4dGXZsWXHh5Nmg+qfYeMCMfMhAGkO2qa7rTP79K2"
    "H3wqsFONrRvraPdSItRDuRcm5ryrGhA8XhOpDnR1q3sqE1pbjXJ0BldcaONi3KXEM/qG+PIt"
    "rBvYYLIlYPcJuxniT9Gj8pce0ZA+E6F3z8lX1RHiluHsTVHm5GTT7aNbWxvr+YE9sDv1e0Qh"
    "69scjoVDtfucCr9xj1jEQG8PDlxH7wA1kUW84Yb0kEYSPzmXnJi4Tx7Ynr6VfTdAwG5Fpf5D"
    "NRCnXrH6ZejduCdCJkKnurf4zEl8z7j9THWI2MQP7BlbFDNpH28HvSA3ez50p3f3XGRUwRz1"
    "uITE+mKmKvYe7ddP8rQk+Q42zoQInq3ejAsW20fku86lvM25wIage7Fq625XBmzy1l0+TmMd"
    "OmM3Tp++IhpwiLXx3iH7HdvDyHlJ9sMTx444D8ArAna2tPqubJGPxQeT6rdPEKYZgd52On3O"
    "JGEx5Mcd+Zow0n0iRYZ8IxxH69e7AL0RiSXzKI7Lm+uf3ObhALNQWgIiMUw6UcxTQ/78YmuF"
    "/L0eimk7oXxVREbJ9uazRGREja/Y1SZB8XHC5aPYt7IRZxH1pMoLyL8XF5UsH+Sb347zexA5"
    "nISQWLVrHwrTD3hyWUENSlUUdzrFLRZhwWtSseU8zFsPUbHB0bWc73Zf8U1w3ZkZ12LOBkux"
    "DU2HAXDVPaDr+8vLbBQ39ER3x3C/EryDsTrVZ0tenN/2YEvmuf3ILuW7u36lZuO9gRz5m0BK"
    "YQokzVEznYfU7tDhdlUZ11LYRIxLcoqUTYQtOympfkdBOO4w/3YuEUsHBx2FwNdONvAdlOqo"
    "P9Tt4qi/PU5W5SUX0kWmyWr3n0/QdPLAPt58uT5BBp8V5EOf8OrloSXd9mVwEndNSVacWPIw"
    "Ly8nVp1SKpvWs5xSSqNAUyIg07jP75PKqIIfd8UMjRfu786Ii4ICuzxAL/CiLmeFqsDSjQSW"
    "vkyyhXtQdYf0uRV0G2Oq62lO+1QPGUu3zBGpZgePYPFEDDumTHddR30+ZRDmhSEyCxFmCLRn"
    "fyJU1cE4Mk2QsFTfVP21H++sb6x3iFhrq1bKh4dIM8qQPQuLOvj3EBEDYx0+ViggRENHyE2l"
    "6QXEOURrXYeZuXFuDwwzw5fHBu5F35m6m9kISzRT9wffN0Pq1Znbf+7bcXATbulgNEN3LwiE"
    "rgnUmz8wsJa84DS4mkMXuEly/IF2mT+xkpJZYln2iFCTiqYoJE1ReW+rmCMFt9tj3LXKxtyk"
    "yV4dByvzjvnrIfTyDNmXdd13FKasTS5tz9km4KnuBNEBmFi2TZeNod5QwgbviiH7Ji3lyELo"
    "pROOvKrvi0wsPp5I+xh7zJZ5oj0ZkauyCkSSLCuEYOuSs/zwxspWEIchNtVzs/68G3dK78Lk"
    "ODEbhl8sBOsA5AozN29iuvh4c3922UKfO63z9m3bCfD2DG1dGZwmOq3mZRw/+DKUyyUftpi0"
    "5rUYvsWrq6eRLSbP+uXXJhJzIckY8QnoHk5TzbgFIQpTg8Lm8il6NIhUa414RCNuGg5foQZD"
    "X05hAR2o/kVcnsvNdbwKBWGSZ2JW7MKrYBc8Xa0SA+EJFzoEon19cXOCKBvwB/al2bluX/90"
    "gtRUwZR2Hlir07npnCBiWdzKZnhuOzRCgRp3ZCs5lN4TKLIaChNCn7jdlBx84hMpBcS7DkCp"
    "Pgax/XxXzoIehTj12KFPqjp1WJ06rGJtlkVYFcRPacGS/xnPlf8YuzccqE/1V7Tx0J3YTbN6"
    "LgxpMSQ5Rz06dNIOfLbhvf33JVIjp33xn1M9fcB4FXpHFCi+3hxRow4OB4OfVCAxI5O4z7Nt"
    "6SJ5PZrKcSmk49LjRkyW3WQbzm1fZANOk+P2oMcCwUKDpHqgtfnwKqq4WvNe/5rnT28Ws+SF"
    "sp8lr3iRjGuZqDrd3EupIyQ1TdQjcFbIG5x1vf7oFFRqAbK/iTWxeF95j7Ek3Zpd6sAniCIy"
    "3Cxd1EDh7TU0g15H+JkcIMjrZfEZGnIi0AzWRl8eLuGIPbA9XxySvYTa2bKEXoGp3D9Vy7C9"
    "BRZK0qVJFFU5G6nKU105G3FBHphzz8igOmSKKwH7SS31pDMI92IGctLtZl6lfdvJmnf0peut"
    "smvtYu86JbuWxHHne7LRip7w7tbqmjVlzDnPlWfB7txf23yiI//ALprty9bHk1xb2VtnFF1y"
    "M6ux5AmUgXnZtWG0etLxjecbL5ph9EoMoUwBe5X9+73YvwUKfCuapqtUMQU4vpIlVUyWZCb9"
    "0ZQ9bSIH9Tl0VCLAt5qiw4dYklfr4bnMqV1ocLlPe66ekvSnkj4TNKFEuWdO5uiAW1pHM4tK"
    "Cb6i44pBSmmJLfkIPiNGfWXSq+sQS0kPBIkhcrd5ofh8zbpjN10zdBHJzlGRuoUkdW1lRRSQ"
    "nJbZbb+7cMXt62BzaZcd7jir1+e2LzJFXlivLzDpZLYL/UKVWbjELPS43TWtwnJ+JyNiFfrH"
    "VpGONXcU1l8UeNrDiho8i9p0g0e16850w4wGT8fOOCu8I8ZAZwNHbdIxlZqB7mPTVAYGZbp8"
    "QJV6kX2NOhIjN0uYpuEjZs5mu19Q5ntG70dBrGeqfv2on1p3KA4m8/1T+3CxzRvZ+c2UGUQt"
    "p9fMTHom5jznZ03X+aJpwWyjbeVRTjaERkrB+QxRV6I0Bzd2YopWrO13wNoWZP+6SSzaH8Wt"
    "eU5N6nqHF22WrXTJil2+FuRyjL8Xr3hNjyx5mlcrfTzTmbys+kRK4aeFFtdGI8vi2mgkL65Q"
    "Fwo/Vy9VDoSd5iVE920m0+VtiunyNvoJiMRvDCVHnSd/Yyhf1HnR0N5F2PmLLmbf/g+FQAj5"
)
