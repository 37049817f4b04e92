%%% @doc The reckon-db integration, run inside a release that holds the
%%% `reckon_db' stand-in (test/reckon_db) and `reckon_cnode' in spawn mode,
%%% as a reckon-db user's code would do it. Writes `{ok, Figures}' or
%%% `{failed, Step, Detail}' to the report file, then stops the node.
%%%
%%% 1. Boot: reckon_db started before reckon_cnode and owns `reckon_db_pg';
%%%    the shim is connected to its C node; the package has no module of
%%%    reckon-db's name.
%%% 2. A subscription served by one reckon_db emitter and a C pool of two,
%%%    one subscriber: 300 broadcasts through reckon-db's own
%%%    `reckon_db_emitter_group:broadcast/3' each reach the subscriber
%%%    exactly once, and the two kinds of emitter share them.
%%% 3. The C pool's subscriber dies: the pool leaves the group (reckon-db's
%%%    broadcast stops picking it), says so in the log with the store and the
%%%    subscription, counts an event that still reaches it; the next 50
%%%    broadcasts are all served by the reckon_db emitter; a start replaces
%%%    the detached pool; stops leave only the reckon_db emitters.
-module(rdb_scenario).

-export([run/1]).
-export([log/2]).

-define(STORE, orders).
-define(N, 300).

-spec run(string()) -> ok.
run(Report) ->
    Result = try {ok, scenario()}
             catch throw:{failed, Step, Detail} -> {failed, Step, Detail};
                   Class:Reason:Stack -> {failed, crashed, {Class, Reason, Stack}}
             end,
    ok = file:write_file(Report, io_lib:format("~p.~n", [Result])),
    init:stop().

scenario() ->
    boot_checks(),
    ok = logger:add_handler(rdb_scenario, ?MODULE, #{config => #{to => self()}}),
    {Exact, Shares} = broadcast_both_kinds(),
    Death = subscriber_death(),
    #{exactly_once => Exact, shares => Shares, subscriber_death => Death}.

boot_checks() ->
    await(fun() -> lists:keymember(reckon_cnode, 1, application:which_applications()) end,
          30000, apps_started),
    Started = [A || {A, _, _} <- application:which_applications()],
    %% which_applications/0 lists the last started first
    check(start_order, index(reckon_cnode, Started) < index(reckon_db, Started),
          Started),
    Scope = whereis(reckon_db_pg),
    Children = supervisor:which_children(reckon_db_sup),
    check(scope_owner, lists:keyfind(pg, 1, Children) =:= {pg, Scope, worker, [pg]},
          {Scope, Children}),
    await(fun() -> maps:get(connected, reckon_cnode:status()) end, 30000, cnode_connected),
    check(spawn_mode, maps:get(mode, reckon_cnode:status()) =:= spawn, reckon_cnode:status()),
    {ok, Mods} = application:get_key(reckon_cnode, modules),
    Foreign = [M || M <- Mods, lists:prefix("reckon_db", atom_to_list(M))],
    check(no_reckon_db_modules, Foreign =:= [], Foreign),
    check(seed_module_is_reckon_dbs,
          filename:basename(filename:dirname(filename:dirname(
                                               code:which(reckon_db_emitter_group))))
          =:= "reckon_db-5.0.0-standin",
          code:which(reckon_db_emitter_group)).

broadcast_both_kinds() ->
    Sub = <<"orders-by-day">>,
    Subscriber = collector(),
    {ok, [Beam]} = reckon_db_emitter:start_pool(?STORE, Sub, 1, Subscriber),
    {ok, CPids} = reckon_cnode:start_emitter_pool(?STORE, Sub, 2, Subscriber),
    Members = reckon_db_emitter_group:members(?STORE, Sub),
    check(members, lists:sort([Beam | CPids]) =:= lists:sort(Members), Members),
    Results = [reckon_db_emitter_group:broadcast(?STORE, Sub, event(I))
               || I <- lists:seq(1, ?N)],
    check(broadcast_results, lists:usort(Results) =:= [ok], lists:usort(Results)),
    Got = collected(Subscriber, ?N, 20000),
    Ids = lists:sort([element(5, E) || {events, [E]} <- Got]),
    check(each_event_once, Ids =:= lists:seq(1, ?N), {length(Got), Ids}),
    BeamShare = reckon_db_emitter:taken(Beam),
    {ok, #{events_in := CShare, delivered := CDelivered}} =
        reckon_cnode:emitter_pool_info(?STORE, Sub),
    %% every delivery made is one the subscriber got: no duplicate
    check(deliveries_add_up, BeamShare + CDelivered =:= ?N andalso CShare =:= CDelivered,
          {BeamShare, CShare, CDelivered}),
    check(both_kinds_served, BeamShare > 0 andalso CShare > 0, {BeamShare, CShare}),
    ok = reckon_cnode:stop_emitter_pool(?STORE, Sub),
    ok = reckon_db_emitter:stop_pool(?STORE, Sub),
    {#{sent => ?N, received => length(Got), distinct => length(lists:usort(Ids))},
     #{reckon_db_emitter => BeamShare, c_pool => CShare}}.

subscriber_death() ->
    Sub = <<"orders-by-hour">>,
    Subscriber = collector(),
    Doomed = spawn(fun() -> receive stop -> ok end end),
    {ok, [Beam]} = reckon_db_emitter:start_pool(?STORE, Sub, 1, Subscriber),
    {ok, [X1, X2]} = reckon_cnode:start_emitter_pool(?STORE, Sub, 2, Doomed),
    Dropped0 = no_subscriber(),
    exit(Doomed, kill),
    %% reckon-db's view (this node's pg) drops the C emitters
    await(fun() -> reckon_db_emitter_group:members(?STORE, Sub) =:= [Beam] end, 10000,
          pool_left_group),
    {ok, #{joined := 0}} = reckon_cnode:emitter_pool_info(?STORE, Sub),
    LogLine = await_log(["its subscriber is gone", "store orders",
                         "subscription \"orders-by-hour\""], 10000),
    %% an event that still reaches a detached emitter is counted
    X1 ! {broadcast, reckon_db_emitter_group:topic(?STORE, Sub), event(0)},
    await(fun() -> no_subscriber() =:= Dropped0 + 1 end, 10000, drop_counted),
    Results = [reckon_db_emitter_group:broadcast(?STORE, Sub, event(I))
               || I <- lists:seq(1, 50)],
    check(broadcast_results_after_death, lists:usort(Results) =:= [ok], Results),
    Got = collected(Subscriber, 50, 20000),
    check(remaining_emitter_serves_all, reckon_db_emitter:taken(Beam) =:= 50
          andalso length(Got) =:= 50, {reckon_db_emitter:taken(Beam), length(Got)}),
    %% reckon-db restarting the subscription: a start replaces the pool
    {ok, New} = reckon_cnode:start_emitter_pool(?STORE, Sub, 2, Subscriber),
    check(replaced, New -- [X1, X2] =:= New, New),
    check(rejoined, lists:sort([Beam | New]) =:=
              lists:sort(reckon_db_emitter_group:members(?STORE, Sub)),
          reckon_db_emitter_group:members(?STORE, Sub)),
    ok = reckon_cnode:stop_emitter_pool(?STORE, Sub),
    %% the C node's leave reaches this node's pg view a moment later
    await(fun() -> reckon_db_emitter_group:members(?STORE, Sub) =:= [Beam] end, 10000,
          stopped),
    ok = reckon_db_emitter:stop_pool(?STORE, Sub),
    #{left_group => true, counted => 1, log => LogLine, served_after => 50}.

%%% Helpers

event(I) ->
    T = erlang:system_time(microsecond),
    {event, integer_to_binary(I), <<"order_placed">>, <<"order-", (integer_to_binary(I))/binary>>,
     I, #{}, #{}, undefined, T div 1000, T, <<"application/json">>, <<"application/json">>}.

no_subscriber() ->
    maps:get(no_subscriber, maps:get(errors, reckon_cnode:stats())).

collector() ->
    spawn(fun() -> collect([], none) end).

%% Keeps what it gets; answers a {take, From, N} once it holds N messages.
collect(Acc, {From, N}) when length(Acc) >= N ->
    From ! {taken, self(), lists:reverse(Acc)},
    collect([], none);
collect(Acc, Waiter) ->
    receive
        {take, From, N} -> collect(Acc, {From, N});
        M -> collect([M | Acc], Waiter)
    end.

%% The first N messages the collector got (or fails after Timeout).
collected(Collector, N, Timeout) ->
    Collector ! {take, self(), N},
    receive {taken, Collector, Msgs} -> Msgs
    after Timeout -> throw({failed, {collected, N}, timeout})
    end.

check(_Step, true, _Detail) -> ok;
check(Step, false, Detail) -> throw({failed, Step, Detail}).

await(Fun, Timeout, Step) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    await_loop(Fun, Deadline, Step).

await_loop(Fun, Deadline, Step) ->
    case catch Fun() of
        true -> ok;
        Other ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> throw({failed, Step, Other});
                false -> timer:sleep(20), await_loop(Fun, Deadline, Step)
            end
    end.

await_log(Parts, Timeout) ->
    receive
        {rdb_scenario_log, Text} ->
            case lists:all(fun(P) -> string:find(Text, P) =/= nomatch end, Parts) of
                true -> Text;
                false -> await_log(Parts, Timeout)
            end
    after Timeout -> throw({failed, log_line, Parts})
    end.

index(X, L) -> length(lists:takewhile(fun(Y) -> Y =/= X end, L)).

%% logger handler: every formatted message to the scenario's process.
-spec log(logger:log_event(), logger:handler_config()) -> ok.
log(#{msg := Msg}, #{config := #{to := To}}) ->
    Text = case Msg of
               {string, S} -> unicode:characters_to_list(S);
               {report, R} -> lists:flatten(io_lib:format("~p", [R]));
               {Format, Args} -> lists:flatten(io_lib:format(Format, Args))
           end,
    To ! {rdb_scenario_log, Text},
    ok.
