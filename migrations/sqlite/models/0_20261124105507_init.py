from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "users" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "name" VARCHAR(100) NOT NULL,
    "role" VARCHAR(10) NOT NULL /* USER: user\nADMIN: admin */,
    "created_at" TIMESTAMP NOT NULL
) /* Someone who owns chat sessions; authenticates with API keys. */;
CREATE INDEX IF NOT EXISTS "idx_users_created_43d91f" ON "users" ("created_at");
CREATE TABLE IF NOT EXISTS "api_keys" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "key_digest" VARCHAR(64) NOT NULL UNIQUE,
    "prefix" VARCHAR(16) NOT NULL /* first characters, to recognise a key */,
    "label" VARCHAR(100) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "last_used_at" TIMESTAMP,
    "revoked_at" TIMESTAMP,
    "user_id" CHAR(36) NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
) /* A bearer credential; only a SHA-256 digest of the secret is stored. */;
CREATE TABLE IF NOT EXISTS "model_configs" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "provider" VARCHAR(50) NOT NULL,
    "model_name" VARCHAR(200) NOT NULL,
    "model_version" VARCHAR(100) NOT NULL,
    "parameters" JSON NOT NULL,
    "base_url" VARCHAR(500),
    "api_key_env" VARCHAR(200),
    "is_default" INT NOT NULL,
    "version" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL
) /* How to reach one AI model; `version` is bumped by every change so clients rebuild. */;
CREATE INDEX IF NOT EXISTS "idx_model_confi_is_defa_17983f" ON "model_configs" ("is_default");
CREATE TABLE IF NOT EXISTS "chat_sessions" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "last_seq" INT NOT NULL,
    "turn_token" VARCHAR(36),
    "turn_expires_at" TIMESTAMP,
    "model_config_id" CHAR(36) NOT NULL REFERENCES "model_configs" ("id") ON DELETE RESTRICT,
    "user_id" CHAR(36) NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
) /* A conversation of one user with one model config. */;
CREATE INDEX IF NOT EXISTS "idx_chat_sessio_user_id_1e4c0d" ON "chat_sessions" ("user_id", "created_at");
CREATE INDEX IF NOT EXISTS "idx_chat_sessio_created_ff6f7f" ON "chat_sessions" ("created_at");
CREATE TABLE IF NOT EXISTS "messages" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "seq" INT NOT NULL,
    "type" VARCHAR(10) NOT NULL /* USER: user\nAI: ai */,
    "content" TEXT NOT NULL,
    "metadata" JSON,
    "created_at" TIMESTAMP NOT NULL,
    "client_message_id" VARCHAR(200),
    "request_digest" VARCHAR(64),
    "session_id" CHAR(36) NOT NULL REFERENCES "chat_sessions" ("id") ON DELETE CASCADE,
    "reply_to_id" CHAR(36) UNIQUE REFERENCES "messages" ("id") ON DELETE SET NULL,
    CONSTRAINT "uid_messages_session_4350d2" UNIQUE ("session_id", "seq"),
    CONSTRAINT "uid_messages_session_c18cda" UNIQUE ("session_id", "client_message_id")
) /* One message of a session; `seq` gives the exact order within the session. */;
CREATE TABLE IF NOT EXISTS "logs" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "level" VARCHAR(10) NOT NULL /* INFO: info\nWARNING: warning\nERROR: error */,
    "event" VARCHAR(64) NOT NULL,
    "message" TEXT NOT NULL,
    "actor_id" VARCHAR(36),
    "details" JSON,
    "created_at" TIMESTAMP NOT NULL
) /* A system operation worth auditing; `details` holds the structured facts. */;
CREATE INDEX IF NOT EXISTS "idx_logs_created_0cf83d" ON "logs" ("created_at");
CREATE INDEX IF NOT EXISTS "idx_logs_level_591a9d" ON "logs" ("level", "created_at");
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSON NOT NULL
);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        """


MODELS_STATE = (
    "eJztXG1v2zgS/iuEP/WAbJA6sdNLFgfYqdv6NrEXjrO72LZQaIm2icikK1FJjF7++w31Yr"
    "0rkmM5ildf8jLkUNQz1HDm0Yg/GwuuEd08vDGJ0ThDPxsMLwj8EZIfoAZeLn2pFAg80e2O"
    "FvSwJXhiCgOrAoRTrJsERBoxVYMuBeVMdr3mC8IZQQ9zjvgDM5E6xwKZxDShg3mOsCXmhA"
    "mqYkFM9EDFHHV+76M7sjIP5RU0rsIlKJttYzCL0R8WUQSfEegob/7rdxBTppFHYsp/vzZU"
    "g4C2pmDR+C4bl3fKlBJdCyFFNTmcLVfEamnLbm76Hz/ZPeW0J4rKdWvB/N7LlZhztu5uWV"
    "Q7lDqybUYYMeRlA0AyS9ddwD2RM38QCMMi64lrvkAjU2zp0hyNX6cWU6UVkH0l+ePkP+7U"
    "At0UZTAcK9e9saI0YtaTU4jYwBWpgDdYnjIhYfv55IzrA2JLG/ICF186o3fH7X/ZEHBTzA"
    "y70Yar8WQrYoEdVdsEPsr27xjOF3NsJOPs9Y8gDRPdBGNP4IPsL3EPPg+gEiBtLPCjohM2"
    "E3P49/3RUQbGf3RGNszQy8aZwzPpPKkDt6nptEm8fXwNrqfg22PWwsa4D3PCTCUxrD3d3W"
    "Fte52CC7hxc90bnSGp+Y11Pl71B2cIawvKoq4lnw1ymSDDAlEDBHxNzAwfoUXQBUle6mHN"
    "iBE0V/XQ++MtLn+4QW3I9JXr3DKgH/evetfjztXv8nIL0/yh2/h1xj3Z0rSlq4j0XTtipv"
    "Ug6M/++AuS/6K/h4Ne1G2t+43/bsg5wZbDFcYfFKwF/LAn9VB7kjvJ9C7g5aRggtW7B2xo"
    "SqjFXx54SRW5d8UXR9fV/PTbiOjYxja+DNztvLOkv5HVG1wCT96i96T+UvAx8jb/l2EEPk"
    "9cOyPtE1BykfEmT1t28aZFcxGVYIZn9i3Ja8srhZdVQvzoL7j0CDK4tJ8PIjtoQrBBDARu"
    "T5MBHtbPEQfngDC6/tL5pdlqI43OiCkQnyII7SAmhK4CUROZgoNSPJbc0pjPh5R1EPmqQS"
    "SsMsWxY5FQMqy1nSDnebx3Fk62T3KEMu2T1FBGNoVDmaVBpvSxCMS+RpXjdbgdA1wAJJrS"
    "RUHae4AERwZR+YxRk4CzuHN8XeFosp0nmoyGKYFosh01ASBD9CIWWCvsMIgvy3nsIF2qo/"
    "V09PcrWg8/VaZQIIHcxO5R3S1Y3p1yVQz/RgztYZJpaYPc87uN7BzWrK1cZStLLkgpFnoH"
    "VLYZf1fXqM+E2zEyI4xuHNpPkC7RGYOsMEYqJufj3iuItwlpLBEHsYEf1ilgcEHBvcMdE+"
    "GEap3ri87HXuMpnR0qM6W/kr8uOJvSWSMhrw82H2Ql97ZIogA9c2b4X/iDE1djdY7kK55O"
    "H9nDnKPbe4i6odutzLwn1mJJNDRZIQLilYzL2QxSc45UnUIWb8IQE4vqCQl/OZfI80qJmu"
    "ulVr9Sel02YGnwe6ol+aisRNXXqXKqumGu1MqTKrXSM6VWLFFynv+ib+/CWnsIdDNXUtrM"
    "SEqb8aTUQc31X8XhDijWJEAeEmCJDfhLuPUPYbA7bPXf6+EgxYuEFKM5AlUF+h/SqcM3lg"
    "K6773l7iUoMw/lZV/DgUuUQvmCB/m7q85fUWtcXA67UU8vB+hGLDPBJlEsoxADFtTZaP1X"
    "LFGLevZ8rj3Lt8ceAPfNjULYfRGkI2r7B3Yp3j0QOcaw7nKuE8xS4sOQYgTtCWiW5WbWkt"
    "16lO5weBnyKN3+OILzzVW3B+7ehh86USfl6g/GEcxT99I+E8lgp2+iMgUsCej3Za3qmZzB"
    "L833J6cnH47bJx+giz3LteQ0ww5xOGvWPB3q/WXNraW2odXDmrXVq2L1BHJ1XWNSuLKprt"
    "p5paqdIGQJFF8E0XSKTxZeK0Er5inigVuVW6VtVVlUI0k4SYU6ldryP/tKyGEOk0p2Nhgh"
    "D0EX4GOD5d8HqC4HrxB3V0cS+7an1JHEP9HqaZFErOrCJD8KZGFBld2lYUdl2XbLaZiwDM"
    "CD35FCJHFYa/9Im+M8RXjH6UV4x7EiPBsx8rik8Cxs4LMS1Otykur4qfj2FHzXXbCsJEG1"
    "Li+JPE51tU5drVP5ap00f7AFaCM1N3uKcIInDCE9Ajc96l+MswqjAiYgpoln5IXk0pUzyh"
    "6hXiqx5MGVVDfmI5lRMxYw2vNc0lAyPY6GpIGwdwbAObqFDOAWzeg9Me2PtsgjDIS4obkk"
    "EWXut1x2/zjHtNWRE7inrx736a5zmbDYRFNY7JSaKe5MpPB7/VlZlcioYrnpztPSMjOobW"
    "emEo0YlPlOIfB0q1wtFj6DoH+GMI16nXzVTFs/fYAzQVhCijomjynrOKBSZci3kon2/hqH"
    "ktBYjdI6Eb0cDj573aOFS5FqPSKwdClxzDNrx4JqL6oceztEQCklYvUbhHRn8za55DxvEO"
    "KxVOJuk2L4JOX9I0JLqV4zCNypKTb4/D6uuX+Qb/8b/HAKkTcDCGvVlFlsES/1FaRwBVGN"
    "qL0A1ugiftVjJEqhIU2/4uSFdNl+VgQdROiy8BP78i8I44s9boohI2MOP/LylrnZsyou72"
    "ctEHm6QyaAOaDBzeVlxAaZkKdTlR7u2yQsK7YtZvKVBSjISz7rMWEknkm1bjvIIiF1nvd7"
    "1Q4yV6YgC8SXEmlJZT1wQ8wRtjQq4G7P0a0GWRvVzVs05zB9hxyE+1KFZRANBlZFwhGn2x"
    "y46HGnkobUyb1zJszGhW9dOkvlwRI3wwQazF2hL6MZy+fA/t1sHh+fNo+O2x9aJ6enrQ9H"
    "azIs3pTFinX7nyUxFor0PKYsnYNc22oT6mytXGUiB0D4NDxDlE35N/ZnZzToDz6fIfCLDK"
    "zzjfVGo+HoDBHD4EY1ODUANYlRS8901gpVNkNlMpyFv8flpSwDKnsB8a4pS9hNeHIJRsbH"
    "fgGd/Uvct1805m7oBVnhgFZNCtekcE0Kb/EQ5jJLJTrEoOq8kXRyrtOSmaNgv89zWUq6nb"
    "d8au0/Jd5/4Tvv9Eh+g/M7XuXkjt29j2i18ryPaLXS30fItujRBctCUYzTfQ/RLed41LRy"
    "gvQIJr2cYAcHorzxEOZVN7On/wNFiZMK"
)
