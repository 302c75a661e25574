/**
 * Variants of a recorded history (the JSON of `temporal workflow show --output json`) that a worker under load
 * can leave: a local activity's marker recorded with one workflow task while the commands that followed its
 * result were sent with the next one. A replay resolves the activity within the first task, so the workflow
 * code must make the same commands in the same order whichever task it runs in.
 */

interface HistoryEvent {
  eventId: string;
  eventTime: string;
  eventType: string;
  [attributes: string]: unknown;
}

export interface RecordedHistory {
  events: HistoryEvent[];
}

export interface SplitVariant {
  /** The event id of the marker the task was split after, in the original history. */
  markerEventId: number;
  history: RecordedHistory;
}

/**
 * How much later the second task of a split starts, at most: the workflow's clock reads differently there. It
 * starts before whatever the run recorded next (a signal, a timer), so the times of the events that followed,
 * and the times the workflow read in their tasks, stay those of the run.
 */
const SPLIT_TASK_DELAY_MS = 1_000;

const LOCAL_ACTIVITY_MARKER = 'core_local_activity';

const attributesOf = (event: HistoryEvent): Record<string, unknown> | undefined => {
  const key = Object.keys(event).find((name) => name.endsWith('EventAttributes'));
  return key === undefined ? undefined : (event[key] as Record<string, unknown>);
};

/** The workflow task completion that sent this event's command, if it was a command. */
const completedBy = (event: HistoryEvent): string | undefined => {
  const value = attributesOf(event)?.workflowTaskCompletedEventId;
  return typeof value === 'string' ? value : undefined;
};

/** Every `...EventId` field that points at or after `fromId` moves by `by` (the events were renumbered). */
const shiftEventIds = (value: unknown, fromId: number, by: number): unknown => {
  if (Array.isArray(value)) return value.map((item) => shiftEventIds(item, fromId, by));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, field]) => {
      const pointsAtEvent = (key === 'eventId' || key.endsWith('EventId')) && typeof field === 'string';
      if (pointsAtEvent && Number(field) >= fromId) return [key, String(Number(field) + by)];
      return [key, shiftEventIds(field, fromId, by)];
    }),
  );
};

const later = (eventTime: string, ms: number): string =>
  new Date(new Date(eventTime).getTime() + ms).toISOString();

/**
 * The history with the workflow task that recorded the marker at `index` ended right after it: the commands
 * that followed it in that task move to a new task, which starts later.
 */
const splitAfter = (events: HistoryEvent[], index: number): HistoryEvent[] => {
  const marker = events[index] as HistoryEvent;
  const completedId = completedBy(marker) as string;
  const completed = events.find((event) => event.eventId === completedId) as HistoryEvent;
  const { scheduledEventId, startedEventId } = attributesOf(completed) as Record<string, string>;
  const scheduled = events.find((event) => event.eventId === scheduledEventId) as HistoryEvent;
  const started = events.find((event) => event.eventId === startedEventId) as HistoryEvent;

  const following = events.slice(index + 1);
  const sentWithMarker = following.findIndex((event) => completedBy(event) !== completedId);
  const moved = sentWithMarker === -1 ? following.length : sentWithMarker;
  const recordedNext = following[moved];
  const delayMs =
    recordedNext === undefined
      ? SPLIT_TASK_DELAY_MS
      : Math.min(
          SPLIT_TASK_DELAY_MS,
          (Date.parse(recordedNext.eventTime) - Date.parse(marker.eventTime)) / 2,
        );
  const at = (position: number): string => later(marker.eventTime, delayMs + position / 1_000);

  const firstMovedId = Number(marker.eventId) + 1;
  const [scheduledId, startedId, completedNowId] = [0, 1, 2].map((offset) => String(firstMovedId + offset));
  const task: HistoryEvent[] = [
    {
      eventId: scheduledId as string,
      eventTime: at(0),
      eventType: 'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED',
      workflowTaskScheduledEventAttributes: scheduled.workflowTaskScheduledEventAttributes,
    },
    {
      eventId: startedId as string,
      eventTime: at(1),
      eventType: 'EVENT_TYPE_WORKFLOW_TASK_STARTED',
      workflowTaskStartedEventAttributes: {
        ...(started.workflowTaskStartedEventAttributes as object),
        scheduledEventId: scheduledId,
      },
    },
    {
      eventId: completedNowId as string,
      eventTime: at(2),
      eventType: 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED',
      workflowTaskCompletedEventAttributes: {
        scheduledEventId: scheduledId,
        startedEventId: startedId,
        identity: (attributesOf(completed) as { identity?: string }).identity,
      },
    },
  ];
  const rest = following.map((original, position) => {
    const event = shiftEventIds(original, firstMovedId, task.length) as HistoryEvent;
    if (position < moved) {
      // A command of the same completion that came after the marker: now sent by the new task.
      event.eventTime = at(task.length + position);
      (attributesOf(event) as Record<string, unknown>).workflowTaskCompletedEventId = completedNowId;
    }
    return event;
  });
  return [...events.slice(0, index + 1), ...task, ...rest];
};

/** One variant for every local activity marker that its workflow task followed with more commands. */
export const splitAfterLocalActivities = (history: RecordedHistory): SplitVariant[] =>
  history.events.flatMap((event, index) => {
    const next = history.events[index + 1];
    const isMarker =
      event.eventType === 'EVENT_TYPE_MARKER_RECORDED' &&
      (attributesOf(event) as { markerName?: string }).markerName === LOCAL_ACTIVITY_MARKER;
    if (!isMarker || next === undefined || completedBy(next) !== completedBy(event)) return [];
    return [{ markerEventId: Number(event.eventId), history: { events: splitAfter(history.events, index) } }];
  });
