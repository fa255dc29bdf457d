-- Reserved for the branch the lead assigned migration 0009 to: the search
-- branch needs 0011 and migrations run without gaps. Delete this file when
-- that branch's 0009 is merged.
SELECT 1;
