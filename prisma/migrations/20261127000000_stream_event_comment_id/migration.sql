-- AlterTable
ALTER TABLE "stream_events" ADD COLUMN     "comment_id" INTEGER;

-- Events stored before this migration: the comment each is about, from its data.
UPDATE "stream_events"
SET "comment_id" = COALESCE(("data"->'comment'->>'id')::integer, ("data"->>'comment_id')::integer);

-- CreateIndex
CREATE INDEX "stream_events_comment_id_idx" ON "stream_events"("comment_id");
