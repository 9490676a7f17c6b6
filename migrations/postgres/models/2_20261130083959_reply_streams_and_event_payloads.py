from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


# Edited by hand: the three tables are UNLOGGED. Their rows live for seconds (events too
# big for a NOTIFY, pieces of replies still streaming) and are worthless after a crash, so
# they skip the write-ahead log and a commit that writes only them waits for no disk flush.
async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE UNLOGGED TABLE IF NOT EXISTS "event_payloads" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "body" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_event_paylo_created_405895" ON "event_payloads" ("created_at");
COMMENT ON COLUMN "event_payloads"."body" IS 'the event as JSON text';
COMMENT ON TABLE "event_payloads" IS 'An event too big for a PostgreSQL NOTIFY; listeners read it by id, then it is swept.';
        CREATE UNLOGGED TABLE IF NOT EXISTS "reply_streams" (
    "id" UUID NOT NULL PRIMARY KEY,
    "state" VARCHAR(10) NOT NULL,
    "error" TEXT,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "session_id" UUID NOT NULL REFERENCES "chat_sessions" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_reply_strea_session_e2d193" ON "reply_streams" ("session_id");
CREATE INDEX IF NOT EXISTS "idx_reply_strea_expires_0637ec" ON "reply_streams" ("expires_at");
COMMENT ON COLUMN "reply_streams"."state" IS 'RUNNING: running\nFAILED: failed';
COMMENT ON TABLE "reply_streams" IS 'A streamed reply still being generated, readable by every process.';
        CREATE UNLOGGED TABLE IF NOT EXISTS "reply_chunks" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "start" INT NOT NULL,
    "text" TEXT NOT NULL,
    "stream_id" UUID NOT NULL REFERENCES "reply_streams" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_reply_chunk_stream__e5eebc" UNIQUE ("stream_id", "start")
);
COMMENT ON TABLE "reply_chunks" IS 'Consecutive pieces of a streamed reply, written together; `start` is a character offset.';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "reply_chunks";
        DROP TABLE IF EXISTS "reply_streams";
        DROP TABLE IF EXISTS "event_payloads";"""


MODELS_STATE = (
    "eJztXWtz4jgW/SsqPvVUZVJp8uieZGurSJp0s5NALyE7s9OZcgQWoIqR3LYIoXrz3/dKfu"
    "AnsQETh/aX7iDpyva58n0crsSP2oTrxLD3b21i1U7RjxrDEwJ/hNr3UA2b5qJVNgjcN9TA"
    "KYxQLbhvCwsPBDQOsWETaNKJPbCoKShncugNnxDOCJqNOeIzZqPBGAtkE9uGAfYZwlMxJk"
    "zQARbERjMqxqjxtYUeyNzel1fQ+QAuQdloE5NNGf0+JZrgIwID5cN/+xuaKdPJE7Hlx2+1"
    "gUVAWtewqP0tO80HbUiJoYeQorqcTrVrYm6qttvb1qdLNVLedl8bcGM6YYvR5lyMOfOHT6"
    "dU35cysm9EGLHkZQNAsqlhuIB7Tc79Q4OwpsS/cX3RoJMhnhpSHbV/DKdsILWA1JXkP0f/"
    "dG8tMEzT2p2edtPsaVotpj15CxEduE0DwBs0T5mQsP14duZdAKJaa/ICF18a3XeHJ78oCL"
    "gtRpbqVHDVnpUgFtgRVSpYoKz+j+F8McZWMs7e+AjScKOrYOw1LEBeLHEPPg+gAiCtTfCT"
    "ZhA2EmP4+P7gYAnG/2l0FcwwSuHM4Z103tS221V3+iTeC3wtbqTg22TTicK4BfeE2YDEsP"
    "Zkt4e1sjo5F3Dt9qbZPUVS8o41Pl232qcI6xPKoqYlmw4yqWCJBqIKCNiamBo+QY+gE5K8"
    "1MOSESXorui+98dbXP7wgHqHGXPXuC2Bvte6bt70Gtdf5eUmtv3dUPg1ek3ZU1et80jru5"
    "OImvxJ0B+t3hckP6K/Ou1m1Gz543p/1eQ9gcvhGuMzDesBO+y1eqg9S08yfAhYOdnQx4OH"
    "GbZ0LdSzWB7YpJr0XfHFce5KXv7eJQZW2MaXgevOGyb9nczf4BJ49ha917pYCguMPOe/Hk"
    "Zg88SNM9MuASUXGa/ztGUX75rUJ9EWzPBIPZK8trxSeFklxI+LBZceQQaX9stBZAP1CbaI"
    "hcDs6TLAw8YZ4mAcEEY3Xxq/1o9PkE5HxBaIDxGEdhATwlCBqI1swUEoHktuaM4sIaV0Px"
    "oEgVU8+brxJCw4zVFpnqgyLLWZeOdlvLcWWZ4cZYhqTo5SoxrZFY5qTIsM6VMeiBcSZQ7d"
    "4XEssAaQc0prBRnwHhIcWWTAR4zaBOzGg2P2cgeWJ1kCy2jEEggsT6IqAGSIkUcDvsAW4/"
    "mijMcWMqcqcE9Hf7cC9/BbZQsNnPkqeo/KbkDz7i2XRfFvRNEeJks1bZFH/rCSnsOSlZbL"
    "rGUvLs8RegdENhl/l1epL4TbMV4jjG4c2kvInOiIQYIY4xeTU3Pv24i3CWksJ4dmC8/8FD"
    "C4oODZ4YmJcEK1xs1F41Oz9pxOFBWZ3V/L/y44G9JRLSHFD3bvLcvzVZNEAUZmTPa/8JkT"
    "V+PBGMlvexotpKY5Q/ePEHXDsHuZhPenE5PoqD9HBJrnMi5nI8jSORoYFBJ6G6boT6mRkP"
    "sXc4ksVAC1/aVWsQGvywaYFn+kepKNWpaoLmTKnKqumCsdZ0mVjtMzpeNYouS8/3m/yAtL"
    "7SDQ9UxJaX1JUlqPJ6UOaq79yg93QLAiAbKQACa24C/hlkKEwW6w+b9uOu0UKxISjOYIdC"
    "DQ/5BBHb6xENAX1lt6L0GZvS8v+xoGXKIUyhc8yN9dN/6MauPiqnMetfRygvOIZvrYJtrU"
    "ysWABWVWWv8lS9Silj2baV9m22MvgPsljkbYYx6kI2K7B3Yh1j0QOcawPufcIJilxIchwQ"
    "jafZAsysz4Ldu1KOedzlXIopy3ehGcb6/Pm2DuFfwwiDopV6vdi2Ce6ktbTCSDne5EZQpY"
    "ENDvi1rVI3kHv9bfH304+nh4cvQRhqi79Fs+LNFDHM6KNU+HendZ86mpr6j1sGSl9bJoPY"
    "Fc9ctNchc5VQU8r1TAE4QsgeKLIJpO8ckabC2oxSz1PPCo0lUqrcr6GknCSSrUKdqWn9SV"
    "kMMcJlXvrDBDnlqdvZDTgWHfYp+D3GZV3rOh6G0NQq8KL3bN0VThxc+o9bTwIlaKYZPvOV"
    "KzoMj2crODonS74dxMTC3Agz+QXMxxWGr3mJzDLJV5h+mVeYexyjyFGHkyKbwLK9isBPGq"
    "xqQ8dirunqJBYo44MEG0qjmJvE5VCU9VwlP6Ep40e7ABaCOFODuKcIIlDCHdBTPdbV30ll"
    "VLBVRAbBuPyJqM07Uzyw6hHqmANY25BgMInqyJVFdOdaNm2iW0Ci2/cxdXUundYt0tKbsL"
    "LPGX6biOJMscCcmkYe9EhTN0D/nSPRrRR2KrLXDkCSZC3NJdno0yd2ecGh+n6TY6cwJ998"
    "2jj12rINM7xc2Fm51qPc29E5+rCxB/FXX3qtRdvkx+60l8kfnmpvN4iUYMymxnOniyZS64"
    "C5/o0DpFmEatTraCsI2f5cCZICwhoe+Rp5R1HBApM+Qbydubf/ZCKXuszMtP26867c/e8G"
    "jtV6TgkQgsTUoc86Xld0GxtYrv3g5tUkiVXfV9S7qxeZvMe5bvW+KxVKK3SVF8kvDu0caF"
    "FABaBJ7UFiucYBCX3D3IN3+MQTiFyJoBhKUqgjG2iCWtAOYlH6oRsTVgjS7iVz2JoxDS1l"
    "4U7axJLu5mUdVehFwMv7Hrb8KML/a4KjqM9Dj8k5Xlzcw1lnF5v6iByNsdUgHcA2rfXl1F"
    "dLAU8nS60sN9k/RuydziUr4yBwV5xUdNJqzEE778vr1lJKTBs275bSB7bgsyQdyUSEsqa8"
    "YtMUZ4qlMBT3uG7nXI2qhh36Mxh9t3yEF4roGYWkSHiQci4cDYTU6c9/BYSUMa5NE5Vmfl"
    "U2XP6SiVB0t0hgk0mLtC16MZi+fAfqvXDw8/1A8OTz4eH334cPzxwCfD4l3LWLHz1mdJjI"
    "UiPY8pS+cgfV2tQp35wmUmcgCEy84pomzI79gfjW671f58isAuMtDOHWt2u53uKSKWxa1y"
    "cGoAahKjlp7p+AJlVkNpMpzJwsdlpSwDIjsB8bYpS/AmPLlgZcl+yYDM7iXumy+xcx16Tl"
    "Y4IFWRwhUpXJHCGzzSushSiaZ0+V/x3OA4HE0n9S/NV1TwoJnO0KyZC0NKDAnOUZ+O0JBb"
    "CKOvDrw3/75CsHJal/89U+ZDrld5ZhDWERXyWCGq78mEg8mP8lzhGTFFQhZT0EUK/TmMKn"
    "HZVuLS53oC5ZEew3njyxzA1VRNkFr02EbS0SABD5QtLdl2UFf5vMrnbdXnBSsqE1xepOAy"
    "3ePFijwzUXVqONGRkoaP1DBQn8AqQP7i3FP+R15mcXieafEBZI+JJN2aU96xO9YSNng66e"
    "Ck6YC/HCJPHtTvTjuTs47xI9lHPeiz+AyNuPydKOkb5WhnmH++/x17J1u9+kXlQjED9wnu"
    "VXpgKn45Azc8hLQBriF3HD8QYsJdwJ0oEgU6Z2PoPEPuj1bZ5I6594x0CkJwIRBwntSCJ5"
    "1BG2Y6cnf4ZPbSge8wFO8Y2CFU7Up+5dJGAZCsSiv6wls8kc2aMskH5kS51r1tO3yiK3/H"
    "Lhutq+anU/cFKQmj6JGbWYMlX2AXmJdtB0ar73Pc+BbHsgVGbyQQyrTHsYp/f5b4t6qPKi"
    "B6qGp5SlLLE7Bo4yl72MS2tws50Q4BXuiutwBiaVmtj+dLSe1Cgy/ntBfwlGQwFfSRIJMS"
    "SM/czWqhtHQPzSwqhMwV3VRM7mIT2BLqrHi8+GEokB7aJIHILfJCybvj1MTe5jg5xXo73y"
    "pSd1ukrqOsmALS98R546tdcUm74lzuOGvW540vM0Ve2qwvZHQyx4VBoSosfCEs9LndNaPC"
    "3dyaH4sKg2urTL+y0yAWHYyTgh23Z2mggxdjXgpx0iF9mV3OFSD8LNHBmp4p3e+v8PMdr/"
    "LDHdvbS3d8nGUv3fFx+l462Rf95QIzD8Lu8B1Et5hfR03bCp9efZe+FX4Lv4fyxsvvXvVL"
    "6ef/A9u0924="
)
