%%% @doc Test helpers for the emitter suites, loaded on `peer' nodes:
%%%
%%% <ul>
%%% <li>a BEAM emitter with the behaviour of reckon-db's `reckon_db_emitter'
%%%   (a gen_server joined to `{S, Sub, emitters}' through
%%%   `reckon_cnode_emitter_group:join/3'): `{broadcast, Topic, Event}' and
%%%   `{forward_to_local, Topic, Event}' send `{events, [Event]}' to its
%%%   subscriber, or, without one, to every member of
%%%   `{S, Topic, subscribers}' in scope `reckon_db_pg'; `{events, Es}' goes
%%%   to the subscriber as is; cast `{update_subscriber, Pid}' replaces the
%%%   subscriber; an `EXIT' of the subscriber clears it. It also counts the
%%%   messages it got by kind and records the topics, for the tests;</li>
%%% <li>a recorder process that keeps every message it gets (directly, as a
%%%   subscriber, or tagged by a collector) and answers "await N messages";</li>
%%% <li>collectors: subscribers that pass what they get to a recorder,
%%%   tagged, so one recorder sees which subscriber got what;</li>
%%% <li>{@link broadcast_many/5}: a caller process on the node that runs
%%%   it, broadcasting through the shim (optionally tracing its own sends,
%%%   to see which message each emitter was sent) or through the C node.</li>
%%% </ul>
%%% @end
-module(rc_test_emitter).
-behaviour(gen_server).

%% emitter
-export([start/3, stop/1, info/1, reset/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
%% recorder and collectors
-export([start_recorder/0, start_collector/2, start_collectors/2,
         recorder_await/3, recorder_take/1, recorder_count/1, recorder_probes/1,
         stop_process/1]).
%% callers
-export([broadcast_many/5, cast_then_probe/3, apply_catch/3]).

-define(SCOPE, reckon_db_pg).

-type kind() :: broadcast | forward_to_local.

%%%===================================================================
%%% BEAM emitter
%%%===================================================================

%% @doc Starts an emitter on this node (not linked: it lives until stopped
%% or the node goes) for `S'/`Sub' with `Subscriber' (a pid or `undefined').
-spec start(atom(), binary(), pid() | undefined) -> pid().
start(S, Sub, Subscriber) ->
    {ok, Pid} = gen_server:start(?MODULE, {S, Sub, Subscriber}, []),
    Pid.

%% @doc Stops an emitter; it leaves the group in terminate/2.
-spec stop(pid()) -> ok.
stop(Pid) ->
    gen_server:stop(Pid).

%% @doc `#{kinds := #{kind() => N}, topics := [binary()], subscriber := ...}'.
-spec info(pid()) -> map().
info(Pid) ->
    gen_server:call(Pid, info).

%% @doc Zeroes the counters.
-spec reset(pid()) -> ok.
reset(Pid) ->
    gen_server:call(Pid, reset).

%% @private
init({S, Sub, Subscriber}) ->
    process_flag(trap_exit, true),
    Topic = reckon_cnode_emitter_group:topic(S, Sub),
    ok = reckon_cnode_emitter_group:join(S, Sub, self()),
    link_subscriber(Subscriber),
    {ok, #{store => S, sub => Sub, topic => Topic, subscriber => Subscriber,
           kinds => #{}, topics => []}}.

%% @private
handle_call(info, _From, #{kinds := Kinds, topics := Topics, subscriber := Sb} = St) ->
    {reply, #{kinds => Kinds, topics => Topics, subscriber => Sb}, St};
handle_call(reset, _From, St) ->
    {reply, ok, St#{kinds := #{}, topics := []}};
handle_call(_Req, _From, St) ->
    {reply, {error, unknown_request}, St}.

%% @private
handle_cast({update_subscriber, Pid}, St) ->
    link_subscriber(Pid),
    {noreply, St#{subscriber := Pid}};
handle_cast(_Msg, St) ->
    {noreply, St}.

%% @private
handle_info({Kind, Topic, Event}, St) when Kind =:= broadcast;
                                           Kind =:= forward_to_local ->
    #{kinds := Kinds, topics := Topics} = St,
    deliver(Topic, Event, St),
    {noreply, St#{kinds := maps:update_with(Kind, fun(N) -> N + 1 end, 1, Kinds),
                  topics := case lists:member(Topic, Topics) of
                                true -> Topics;
                                false -> [Topic | Topics]
                            end}};
handle_info({events, Events}, #{subscriber := Sb} = St) when is_list(Events) ->
    _ = is_pid(Sb) andalso (Sb ! {events, Events}),
    {noreply, St};
handle_info({'EXIT', Pid, _Reason}, #{subscriber := Pid} = St) ->
    {noreply, St#{subscriber := undefined}};
handle_info(_Info, St) ->
    {noreply, St}.

%% @private
terminate(_Reason, #{store := S, sub := Sub}) ->
    ok = reckon_cnode_emitter_group:leave(S, Sub, self()).

deliver(_Topic, Event, #{subscriber := Sb}) when is_pid(Sb) ->
    Sb ! {events, [Event]};
deliver(Topic, Event, #{store := S}) ->
    [P ! {events, [Event]} || P <- pg:get_members(?SCOPE, {S, Topic, subscribers})].

link_subscriber(Pid) when is_pid(Pid) ->
    true = link(Pid);
link_subscriber(_) ->
    ok.

%%%===================================================================
%%% Recorder and collectors
%%%===================================================================

%% @doc A recorder on this node (not linked). It keeps, in arrival order,
%% `{direct, Msg}' for a message sent to it and `{Tag, Msg}' for a message
%% a collector got. Probe events (`{events, [{'$probe', Id}]}') are kept
%% apart, as `{Tag, Id}' (see {@link recorder_probes/1}), so a probe that
%% arrives late never counts as an event.
-spec start_recorder() -> pid().
start_recorder() ->
    spawn(fun() -> recorder_loop([], 0, [], []) end).

recorder_loop(Msgs, Count, Waiters0, Probes) ->
    receive
        {'$rec_got', Tag, Msg} ->
            recorder_got(Tag, Msg, Msgs, Count, Waiters0, Probes);
        {'$rec_await', Ref, From, N} ->
            recorder_loop(Msgs, Count, notify([{Ref, From, N} | Waiters0], Count), Probes);
        {'$rec_take', Ref, From} ->
            From ! {Ref, lists:reverse(Msgs)},
            recorder_loop([], 0, Waiters0, Probes);
        {'$rec_count', Ref, From} ->
            From ! {Ref, Count},
            recorder_loop(Msgs, Count, Waiters0, Probes);
        {'$rec_probes', Ref, From} ->
            From ! {Ref, lists:reverse(Probes)},
            recorder_loop(Msgs, Count, Waiters0, []);
        '$stop' ->
            ok;
        Msg ->
            recorder_got(direct, Msg, Msgs, Count, Waiters0, Probes)
    end.

recorder_got(Tag, {events, [{'$probe', Id}]}, Msgs, Count, Waiters, Probes) ->
    recorder_loop(Msgs, Count, Waiters, [{Tag, Id} | Probes]);
recorder_got(Tag, Msg, Msgs, Count, Waiters, Probes) ->
    recorder_loop([{Tag, Msg} | Msgs], Count + 1, notify(Waiters, Count + 1), Probes).

notify(Waiters, Count) ->
    lists:filter(fun({Ref, From, N}) when N =< Count -> From ! {Ref, ok}, false;
                    (_) -> true
                 end, Waiters).

%% @doc Waits until the recorder holds at least `N' messages (since the last
%% take); fails with the count it reached.
-spec recorder_await(pid(), non_neg_integer(), timeout()) -> ok.
recorder_await(Rec, N, Timeout) ->
    Ref = make_ref(),
    Rec ! {'$rec_await', Ref, self(), N},
    receive
        {Ref, ok} -> ok
    after Timeout ->
            exit({recorder_await_timeout, N, {got, recorder_count(Rec)}})
    end.

%% @doc The messages recorded since the last take, oldest first; empties
%% the recorder.
-spec recorder_take(pid()) -> [{term(), term()}].
recorder_take(Rec) ->
    rec_ask(Rec, '$rec_take').

%% @doc The probes seen since the last call, `[{Tag, Id}]'; clears them.
-spec recorder_probes(pid()) -> [{term(), term()}].
recorder_probes(Rec) ->
    rec_ask(Rec, '$rec_probes').

-spec recorder_count(pid()) -> non_neg_integer().
recorder_count(Rec) ->
    rec_ask(Rec, '$rec_count').

rec_ask(Rec, Op) ->
    Ref = make_ref(),
    MRef = erlang:monitor(process, Rec),
    Rec ! {Op, Ref, self()},
    receive
        {Ref, Reply} -> erlang:demonitor(MRef, [flush]), Reply;
        {'DOWN', MRef, process, Rec, Reason} -> exit({recorder_down, Reason})
    after 30000 ->
            exit({recorder_timeout, Op})
    end.

%% @doc A collector on this node (not linked): every message it gets goes
%% to `Rec' as `{Tag, Msg}'. `'$stop'' makes it exit normally.
-spec start_collector(pid(), term()) -> pid().
start_collector(Rec, Tag) ->
    spawn(fun() -> collector_loop(Rec, Tag) end).

-spec start_collectors(pid(), [term()]) -> [pid()].
start_collectors(Rec, Tags) ->
    [start_collector(Rec, T) || T <- Tags].

collector_loop(Rec, Tag) ->
    receive
        '$stop' -> ok;
        Msg -> Rec ! {'$rec_got', Tag, Msg}, collector_loop(Rec, Tag)
    end.

%% @doc Stops a recorder or collector normally and waits until it is gone.
-spec stop_process(pid()) -> ok.
stop_process(Pid) ->
    MRef = erlang:monitor(process, Pid),
    Pid ! '$stop',
    receive {'DOWN', MRef, process, Pid, _} -> ok
    after 10000 -> exit({stop_timeout, Pid})
    end.

%%%===================================================================
%%% Callers
%%%===================================================================

%% @doc Broadcasts `Events' in order from the calling process, through the
%% shim (`shim': `reckon_cnode_emitter_group:broadcast/3') or the C node
%% (`cnode': `reckon_cnode:broadcast_via_cnode/3'). Returns the results
%% and, if `Trace' is true, the broadcast messages this process sent:
%% `[{Kind, To, Topic, EventId}]' in order (from `erlang:trace/3' on its
%% own sends, which covers sends to remote pids too).
-spec broadcast_many(shim | cnode, atom(), binary(), [tuple()], boolean()) ->
          {[term()], [{kind(), pid(), binary(), term()}]}.
broadcast_many(Mode, S, Sub, Events, Trace) ->
    Self = self(),
    Tracer = case Trace of
                 true ->
                     T = spawn_link(fun() -> tracer_loop([]) end),
                     1 = erlang:trace(Self, true, [send, {tracer, T}]),
                     T;
                 false ->
                     undefined
             end,
    Results = [try bcast(Mode, S, Sub, E)
               catch Class:Reason -> {raised, Class, Reason}
               end || E <- Events],
    Sends = case Tracer of
                undefined ->
                    [];
                _ ->
                    1 = erlang:trace(Self, false, [send]),
                    Ref = erlang:trace_delivered(Self),
                    receive {trace_delivered, Self, Ref} -> ok end,
                    Tracer ! {get, Self},
                    receive {Tracer, L} -> L end
            end,
    {Results, Sends}.

bcast(shim, S, Sub, E) -> reckon_cnode_emitter_group:broadcast(S, Sub, E);
bcast(cnode, S, Sub, E) -> reckon_cnode:broadcast_via_cnode(S, Sub, E).

tracer_loop(Acc) ->
    receive
        {trace, _, send, {Kind, Topic, Event}, To} when Kind =:= broadcast;
                                                        Kind =:= forward_to_local ->
            tracer_loop([{Kind, To, Topic, event_id(Event)} | Acc]);
        {trace, _, send, _, _} ->
            tracer_loop(Acc);
        {trace, _, send_to_non_existing_process, _, _} ->
            tracer_loop(Acc);
        {get, From} ->
            From ! {self(), lists:reverse(Acc)}
    end.

event_id(Event) when is_tuple(Event), tuple_size(Event) >= 2 -> element(2, Event);
event_id(Event) -> Event.

%% @doc From one process: a cast `{update_subscriber, Subscriber}' to
%% `Emitter' (a pid or `{Name, Node}'), then `{events, [Probe]}' to it.
%% Messages from one process to another arrive in order, so once the
%% new subscriber has the probe, the update has been applied.
-spec cast_then_probe(pid() | {atom(), node()}, pid(), term()) -> ok.
cast_then_probe(Emitter, Subscriber, Probe) ->
    ok = gen_server:cast(Emitter, {update_subscriber, Subscriber}),
    Emitter ! {events, [Probe]},
    ok.

%% @doc `{ok, apply(M, F, A)}' or `{raised, Class, Reason}'.
-spec apply_catch(module(), atom(), list()) -> {ok, term()} | {raised, atom(), term()}.
apply_catch(M, F, A) ->
    try {ok, apply(M, F, A)}
    catch Class:Reason -> {raised, Class, Reason}
    end.
