%%% @doc This node's copy of the C node's emitter-name table, in the ETS
%%% table `reckon_cnode_names'.
%%%
%%% The copy belongs to the connection watcher, {@link reckon_cnode_conn}:
%%% its process creates the table ({@link new/0}), subscribes to the C node's
%%% feed (the process registered as `reckon_cnode_names' on the C node) each
%%% time it connects ({@link subscribe/2}), hands this module the feed's
%%% messages ({@link handle_info/3}) and empties the copy when the
%%% connection goes ({@link forget/1}). No process of its own: the feed's
%%% pushes and the barrier of `reckon_cnode:names_applied/0' go to the
%%% watcher, so a call to it after the C node's answer finds every change
%%% that answer followed applied.
%%%
%%% The feed sends the whole table in answer to the subscription, then
%%% every change as it happens. Only messages carrying the token of the
%%% current subscription change the copy (anything else could come from any
%%% process of the cluster). When the C node stops sending changes to a
%%% connection that was busy, the copy is emptied and a new subscription
%%% fills it again.
%%%
%%% Readers call {@link lookup/2} from their own process: a local ETS read.
%%% @end
-module(reckon_cnode_names).

-include_lib("kernel/include/logger.hrl").

-export([new/0, subscribe/2, forget/1, handle_info/3, lookup/2]).

-export_type([feed/0]).

-define(NAMES, reckon_cnode_names).

-record(feed, {
          %% the pending subscription to the C node's name table, and the
          %% token its pushes carry (anything else is not from the C node)
          req :: undefined | gen_server:request_id(),
          token :: undefined | reference()
         }).

-opaque feed() :: #feed{}.
%% The calling process's subscription to the C node's feed.

%% @doc Creates the (empty) ETS table of the copy, owned by the calling
%% process, and returns a feed with no subscription.
-spec new() -> feed().
new() ->
    ?NAMES = ets:new(?NAMES, [named_table, protected, set, {read_concurrency, true}]),
    #feed{}.

%% @doc Asks the feed of the C node `CNode' for its table and its changes,
%% under a new token. The table's answer and the changes come to the
%% calling process, which passes them to {@link handle_info/3}.
-spec subscribe(node(), feed()) -> feed().
subscribe(CNode, #feed{}) ->
    Token = make_ref(),
    Req = gen_server:send_request({?NAMES, CNode}, {subscribe, self(), Token}),
    #feed{req = Req, token = Token}.

%% @doc Ends the subscription and empties the copy: the connection to the C
%% node is gone, so the copy could miss changes.
-spec forget(feed()) -> feed().
forget(#feed{}) ->
    true = ets:delete_all_objects(?NAMES),
    #feed{}.

%% @doc Handles `Msg' if it belongs to the feed: a change, the note that
%% the C node dropped this subscriber (the copy is then emptied and a new
%% subscription to `CNode' made), a stale message of an earlier
%% subscription (ignored), or the answer to the pending subscription.
%% Returns `not_names' for any other message.
-spec handle_info(term(), node(), feed()) -> {ok, feed()} | not_names.
handle_info({'$reckon_names', Token, Key, Names}, _CNode, #feed{token = Token} = Feed)
  when is_reference(Token), is_list(Names) ->
    true = ets:insert(?NAMES, {Key, Names}),
    {ok, Feed};
handle_info({'$reckon_names_dropped', Token}, CNode, #feed{token = Token} = Feed)
  when is_reference(Token) ->
    %% the C node stopped sending us changes (our connection was busy): the
    %% copy is stale, so empty it and ask for a fresh one
    ?LOG_WARNING("reckon_cnode: the copy of the C node's name table fell behind "
                 "(the connection was busy); refilling it", []),
    true = ets:delete_all_objects(?NAMES),
    {ok, subscribe(CNode, Feed)};
handle_info({'$reckon_names', _, _, _}, _CNode, Feed) ->
    {ok, Feed};
handle_info({'$reckon_names_dropped', _}, _CNode, Feed) ->
    {ok, Feed};
handle_info(Msg, _CNode, #feed{req = Req} = Feed) when Req =/= undefined ->
    case gen_server:check_response(Msg, Req) of
        no_reply ->
            not_names;
        {reply, {ok, Table}} ->
            true = ets:delete_all_objects(?NAMES),
            true = ets:insert(?NAMES, Table),
            {ok, Feed#feed{req = undefined}};
        Failed ->
            ?LOG_WARNING("reckon_cnode: no copy of the C node's name table (~0p): "
                         "retrieve_emitters/2 asks the C node each time", [Failed]),
            {ok, Feed#feed{req = undefined}}
    end;
handle_info(_Msg, _CNode, #feed{}) ->
    not_names.

%% @doc The copy's names for `{S, Sub}' (as `persist_emitters/3' stored
%% them on the C node), or `error' when the copy has none: nothing
%% persisted for it, the C node not connected, or the application not
%% running.
-spec lookup(term(), term()) -> {ok, [atom()]} | error.
lookup(S, Sub) ->
    try ets:lookup(?NAMES, {S, Sub, emitters}) of
        [{_, Names}] -> {ok, Names};
        [] -> error
    catch
        error:badarg -> error
    end.
